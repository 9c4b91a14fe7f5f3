import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// An isolated, real Docker engine (its own socket, data root and exec root; no bridge, no iptables) to act as
/// the plugin's client, with a busybox image imported from a local tarball (no registry needed).
final class DockerEngine {
    static let dockerd = "/usr/sbin/dockerd"
    static let docker = "/usr/bin/docker"

    let directory: String
    let socket: String
    private var process: Process?

    /// Fails (rather than skips) when Docker is missing, unless CONVOY_SKIP_DOCKER=1 says this machine has none.
    static var skipReason: String? {
        if ProcessInfo.processInfo.environment["CONVOY_SKIP_DOCKER"] == "1" { return "CONVOY_SKIP_DOCKER=1" }
        return nil
    }

    init() throws {
        guard getuid() == 0 else { throw HarnessError("the Docker tests need root") }
        guard FileManager.default.isExecutableFile(atPath: Self.dockerd) else {
            throw HarnessError("\(Self.dockerd) is missing: run scripts/setup (it installs docker.io)")
        }
        directory = "/tmp/cvd-" + String(UUID().uuidString.prefix(8))
        socket = directory + "/docker.sock"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.dockerd)
        process.arguments = [
            "--data-root", directory + "/data", "--exec-root", directory + "/exec",
            "--pidfile", directory + "/dockerd.pid", "-H", "unix://" + socket,
            "--storage-driver", "overlay2", "--iptables=false", "--ip6tables=false", "--bridge=none",
            "--ip-masq=false", "--userland-proxy=false", "--exec-opt", "native.cgroupdriver=cgroupfs",
        ]
        let logPath = directory + "/dockerd.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            guard process.isRunning else { throw HarnessError("dockerd exited: \(self.log)") }
            if (try? docker(["version"]))?.status == 0 {
                try importBusybox()
                return
            }
            usleep(200_000)
        }
        throw HarnessError("dockerd did not answer within 60 s: \(self.log)")
    }

    var log: String { (try? String(contentsOfFile: directory + "/dockerd.log", encoding: .utf8)) ?? "" }

    func docker(_ arguments: [String], timeout: TimeInterval = 120) throws -> CommandResult {
        try Command.run(Self.docker, ["-H", "unix://" + socket] + arguments, timeout: timeout)
    }

    @discardableResult
    func dockerOK(_ arguments: [String], timeout: TimeInterval = 120) throws -> String {
        let result = try docker(arguments, timeout: timeout)
        guard result.status == 0 else {
            throw HarnessError("docker \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr)")
        }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `tiny:latest`: busybox-static and its applet links, imported from a tarball.
    private func importBusybox() throws {
        let tarball = try Self.busyboxTarball(in: directory)
        try dockerOK(["import", "-c", "ENV PATH=/bin", "-c", "CMD [\"/bin/sh\"]", tarball, "tiny:latest"])
    }

    /// A root filesystem of busybox-static and its applet links as a tarball under `directory`, for `docker
    /// import` (no registry needed); returns its path.
    static func busyboxTarball(in directory: String) throws -> String {
        let image = directory + "/image"
        try FileManager.default.createDirectory(atPath: image + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: image + "/tmp", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: image + "/bin/busybox")
        let applets = try Command.check("/bin/busybox", ["--list"]).split(separator: "\n")
        for applet in applets where applet != "busybox" {
            try? FileManager.default.createSymbolicLink(atPath: image + "/bin/\(applet)",
                                                        withDestinationPath: "busybox")
        }
        try Command.check("/bin/tar", ["-C", image, "-cf", directory + "/image.tar", "."])
        return directory + "/image.tar"
    }

    func stop() {
        if let process, process.isRunning {
            // Containers first, so that their volumes are unmounted through the plugin while it still runs.
            if let ids = try? docker(["ps", "-aq"], timeout: 30).stdout.split(separator: "\n").map(String.init),
               !ids.isEmpty {
                _ = try? docker(["rm", "-f"] + ids, timeout: 60)
            }
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(30)
            while process.isRunning && Date() < deadline { usleep(100_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        process = nil
        // Leftover mounts under the exec and data roots (container rootfs, netns) must go before the files.
        if let mounts = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) {
            for line in mounts.split(separator: "\n").reversed() {
                let fields = line.split(separator: " ")
                if fields.count > 1, fields[1].hasPrefix(directory) { umount2(String(fields[1]), Int32(MNT_DETACH)) }
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A convoy daemon Docker finds as a plugin, and an engine to use it. The plugin socket's file name is the driver
/// name Docker uses; a unique one (`prefix` + 8 hex) keeps a real convoy undisturbed.
struct DockerPluginSetup {
    var driver: String
    var daemon: DaemonHarness
    var engine: DockerEngine

    /// Skips when CONVOY_SKIP_DOCKER=1; `daemonArguments` are added to the daemon's command line.
    static func start(prefix: String, daemonArguments: [String] = []) throws -> DockerPluginSetup {
        if let reason = DockerEngine.skipReason { throw XCTSkip(reason) }
        let driver = prefix + String(UUID().uuidString.prefix(8)).lowercased()
        let daemon = try DaemonHarness(pluginSocket: "/run/docker/plugins/\(driver).sock")
        daemon.extraArguments = daemonArguments
        try daemon.start()
        let engine = try DockerEngine()
        try engine.start()
        return DockerPluginSetup(driver: driver, daemon: daemon, engine: engine)
    }
}
