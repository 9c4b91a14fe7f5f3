import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// convoy as a Docker managed plugin (v2) in an isolated `DockerEngine`: built by scripts/build-plugin from the
/// test's convoy binary, created, configured and enabled; the host's convoy CLI talks to it through the client
/// socket's host directory, and vfs backups go to a host directory bound into the plugin.
final class ManagedPlugin {
    let engine: DockerEngine
    let name: String
    /// Host directory bound at /run/convoy in the plugin: the client API socket is `socket`.
    let clientDirectory: String
    /// Host directory bound at `backupsPath` in the plugin.
    let backupsDirectory: String
    let backupsPath = "/var/lib/convoy-backups"
    private(set) var id = ""

    var socket: String { clientDirectory + "/convoy.sock" }
    /// The host side of the plugin's /var/lib/convoy (its --root: convoy.db and the volumes).
    var propagatedMount: String { engine.directory + "/data/plugins/\(id)/propagated-mount" }
    var rootfs: String { engine.directory + "/data/plugins/\(id)/rootfs" }

    static var sourceRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().path
    }

    init(engine: DockerEngine, name: String = "convoy-test") throws {
        self.engine = engine
        self.name = name
        clientDirectory = engine.directory + "/run"
        backupsDirectory = engine.directory + "/backups"
        for directory in [clientDirectory, backupsDirectory] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
    }

    /// scripts/build-plugin with the test's convoy binary; returns the plugin directory.
    @discardableResult
    static func build(into directory: String) throws -> String {
        try Command.check(sourceRoot + "/scripts/build-plugin", ["--binary", DaemonHarness.binary, "--out", directory],
                          timeout: 300)
        return directory
    }

    /// `docker plugin create`, the host directories set, `args` set; not enabled.
    func create(from directory: String, args: [String]) throws {
        try engine.dockerOK(["plugin", "create", name, directory], timeout: 300)
        id = try engine.dockerOK(["plugin", "inspect", name, "--format", "{{.Id}}"])
        try configure(args: args)
    }

    /// Sets the host directories (and `args`, when given); the plugin must be disabled.
    func configure(args: [String]? = nil) throws {
        var settings = ["client-socket.source=" + clientDirectory, "backups.source=" + backupsDirectory]
        if let args { settings.append("args=" + args.joined(separator: " ")) }
        try engine.dockerOK(["plugin", "set", name] + settings)
    }

    /// Enables the plugin and waits until the client socket answers.
    func enable() throws {
        try engine.dockerOK(["plugin", "enable", name], timeout: 120)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if (try? cli(["info"]))?.status == 0 { return }
            usleep(100_000)
        }
        throw HarnessError("the plugin's client socket \(socket) did not answer within 30 s: "
            + String(engine.log.suffix(3000)))
    }

    func disable(force: Bool) throws {
        try engine.dockerOK(["plugin", "disable"] + (force ? ["-f"] : []) + [name])
    }

    /// The host's convoy CLI on the plugin's client socket.
    func cli(_ arguments: [String], timeout: TimeInterval = 60) throws -> CommandResult {
        try Command.run(DaemonHarness.binary, arguments + ["--socket", socket], timeout: timeout)
    }

    @discardableResult
    func cliOK(_ arguments: [String], timeout: TimeInterval = 60) throws -> String {
        let result = try cli(arguments, timeout: timeout)
        guard result.status == 0 else {
            throw HarnessError("convoy \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr)")
        }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `convoy inspect VOLUME` as JSON.
    func inspect(_ volume: String) throws -> [String: Any] {
        let text = try cliOK(["inspect", volume])
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw HarnessError("convoy inspect \(volume) printed no JSON object: \(text)")
        }
        return object
    }

    /// Mounts under the engine's directory as the host sees them (path and type), from /proc/self/mounts.
    var hostMounts: [(path: String, type: String)] {
        let text = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 2, fields[1].hasPrefix(engine.directory + "/") else { return nil }
            return (String(fields[1]), String(fields[2]))
        }
    }

    /// Containers removed, the plugin disabled and removed (which deletes its propagated mount), the engine
    /// stopped (its directory and every mount under it gone).
    func cleanUp() {
        if let ids = try? engine.docker(["ps", "-aq"], timeout: 30).stdout.split(separator: "\n").map(String.init),
           !ids.isEmpty {
            _ = try? engine.docker(["rm", "-f"] + ids, timeout: 60)
        }
        _ = try? engine.docker(["plugin", "disable", "-f", name], timeout: 60)
        _ = try? engine.docker(["plugin", "rm", "-f", name], timeout: 60)
        engine.stop()
    }
}

/// A private image registry on loopback (Debian's docker-registry), for `docker plugin push` and
/// `docker plugin upgrade`, which take plugins only from a registry. Docker trusts 127.0.0.0/8 without TLS.
final class LocalRegistry {
    static let binary = "/usr/bin/docker-registry"
    let directory: String
    let address: String
    private var process: Process?

    init(directory: String) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw HarnessError("\(Self.binary) is missing: run scripts/setup (it installs docker-registry)")
        }
        self.directory = directory
        address = "127.0.0.1:\(Int.random(in: 20_000...29_999))"
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        let config = """
            version: 0.1
            log:
              level: warn
            storage:
              filesystem:
                rootdirectory: \(directory)/data
            http:
              addr: \(address)
            """
        try config.write(toFile: directory + "/config.yml", atomically: true, encoding: .utf8)
    }

    func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve", directory + "/config.yml"]
        let logPath = directory + "/registry.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            guard process.isRunning else {
                let said = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                throw HarnessError("docker-registry exited: \(said)")
            }
            if (try? Command.run("/usr/bin/curl", ["-sf", "http://\(address)/v2/"], timeout: 5))?.status == 0 { return }
            usleep(100_000)
        }
        throw HarnessError("docker-registry did not answer on \(address) within 20 s")
    }

    func stop() {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
        process = nil
        try? FileManager.default.removeItem(atPath: directory)
    }
}
