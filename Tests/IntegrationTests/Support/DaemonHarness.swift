import ConvoyClient
import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs the real `convoy` binary as a daemon on its own root and sockets, and talks to it as Docker and the CLI do.
final class DaemonHarness {
    let directory: String
    let root: String
    var socket: String
    let pluginSocket: String
    let logPath: String
    private(set) var process: Process?
    var extraArguments: [String] = []
    /// Added to the daemon's environment (e.g. `CONVOY_FAILPOINT`).
    var environment: [String: String] = [:]

    /// The convoy binary built beside this test bundle (or CONVOY_BINARY).
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["CONVOY_BINARY"] { return path }
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return bundle.appendingPathComponent("convoy").path
    }

    /// `pluginSocket` may be given to place the socket where Docker looks for plugins.
    init(pluginSocket: String? = nil) throws {
        // Short paths: a UNIX socket path is limited to 107 bytes.
        directory = "/tmp/cvt-" + String(UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        root = directory + "/root"
        socket = directory + "/convoy.sock"
        self.pluginSocket = pluginSocket ?? directory + "/plugin.sock"
        logPath = directory + "/daemon.log"
        try Data("{}".utf8).write(to: URL(fileURLWithPath: configFile))
    }

    deinit {
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    func cleanUp() {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            if !waitForExit(timeout: 20) {
                // Dying but held by a FUSE request of its own nobody answers: fail the test, not hang the run.
                abortFuseConnections()
                process.waitUntilExit()
            }
        }
        // The FUSE keeper a lazy volume started outlives the daemon on purpose; not the test.
        _ = try? Command.run("/usr/bin/pkill", ["-KILL", "-f", "fuse-keeper --socket \(root)/"], timeout: 10)
        detachMounts()
        try? FileManager.default.removeItem(atPath: directory)
        unlink(pluginSocket)
    }

    /// What is mounted under the test's directory (FUSE mounts and overlays a killed daemon left), deepest first.
    var mountsUnderDirectory: [String] {
        mountInfoUnderDirectory.map { String($0[4]) }.sorted { $0.count > $1.count }
    }

    /// The /proc/self/mountinfo lines of mounts under the test's directory, split into fields.
    private var mountInfoUnderDirectory: [[Substring]] {
        let text = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map { $0.split(separator: " ") }
            .filter { $0.count > 4 && $0[4].hasPrefix(directory + "/") }
    }

    /// Detaches every mount under the test's directory, so it can be removed.
    func detachMounts() {
        for path in mountsUnderDirectory { umount2(path, Int32(MNT_DETACH)) }
    }

    /// The daemon's configuration file: an empty one unless a test writes its own, so that a machine's
    /// /etc/convoy/daemon.json never reaches the tests.
    var configFile: String { directory + "/daemon.json" }

    var arguments: [String] {
        ["daemon", "--config-file", configFile, "--root", root, "--socket", socket, "--plugin-socket", pluginSocket]
            + extraArguments
    }

    /// Starts the daemon and waits until both sockets answer.
    func start(timeout: TimeInterval = 20) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard process.isRunning else {
                throw HarnessError("convoy daemon exited with \(process.terminationStatus): \(log_())")
            }
            if (try? plugin("Plugin.Activate"))?.status == 200, (try? cli(["info"]))?.status == 0 { return }
            usleep(50_000)
        }
        throw HarnessError("convoy daemon did not answer within \(Int(timeout)) s: \(log_())")
    }

    /// SIGTERM and wait: a clean stop.
    @discardableResult
    func stop() -> Int32 {
        guard let process else { return -1 }
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        self.process = nil
        return process.terminationStatus
    }

    /// The pid of the FUSE keeper of this daemon's root, if one runs.
    var keeperPID: Int32? {
        let found = try? Command.run("/usr/bin/pgrep", ["-f", "fuse-keeper --socket \(root)/"], timeout: 10)
        return found.flatMap { Int32($0.stdout.split(separator: "\n").first ?? "") }
    }

    /// kill -9: a crash.
    func crash() {
        guard let process else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    var isRunning: Bool { process?.isRunning ?? false }

    /// Waits up to `timeout` for the daemon to exit (killed, or killing itself at a failpoint); whether it did. A
    /// process whose main thread exited is not reaped before its last thread, so a thread stuck in the kernel
    /// keeps it running here.
    func waitForExit(timeout: TimeInterval) -> Bool {
        guard let process else { return true }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(100_000) }
        if process.isRunning { return false }
        self.process = nil
        return true
    }

    /// Fails every request of the FUSE mounts under the test's directory (fusectl's `abort`), which frees a
    /// process stuck waiting on one.
    func abortFuseConnections() {
        let connections = "/sys/fs/fuse/connections"
        if (try? FileManager.default.contentsOfDirectory(atPath: connections))?.isEmpty ?? true {
            _ = try? Command.run("/bin/mount", ["-t", "fusectl", "fusectl", connections], timeout: 10)
        }
        for fields in mountInfoUnderDirectory {
            // The filesystem type follows the "-" that ends the optional fields.
            guard let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count, fields[dash + 1].hasPrefix("fuse"),
                  let minor = fields[2].split(separator: ":").last else { continue }
            try? "1".write(toFile: "\(connections)/\(minor)/abort", atomically: false, encoding: .utf8)
        }
    }

    /// The daemon's peak resident memory so far (VmHWM), in bytes; 0 when it does not run.
    var peakResidentBytes: Int {
        guard let pid = process?.processIdentifier,
              let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    func log_() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// One Docker plugin call with a raw body; returns the status and the decoded JSON object.
    func plugin(_ method: String,
                _ body: String = "{}") throws -> (status: Int, json: [String: Any], contentType: String) {
        let client = UnixHTTPClient(socketPath: pluginSocket, timeoutSeconds: 30)
        let response = try client.request("POST", "/" + method, body: Array(body.utf8),
                                          headers: ["Accept": "application/vnd.docker.plugins.v1.2+json"])
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
        return (response.status, object, response.headers["content-type"] ?? "")
    }

    /// A plugin call that must succeed (no Err); returns the JSON object.
    @discardableResult
    func pluginOK(_ method: String, _ fields: [String: Any]) throws -> [String: Any] {
        let body = String(decoding: try JSONSerialization.data(withJSONObject: fields), as: UTF8.self)
        let reply = try plugin(method, body)
        if let err = reply.json["Err"] as? String, !err.isEmpty { throw HarnessError("\(method) failed: \(err)") }
        return reply.json
    }

    /// The Err of a plugin call that must fail.
    func pluginErr(_ method: String, _ body: String) throws -> String {
        let reply = try plugin(method, body)
        guard let err = reply.json["Err"] as? String, !err.isEmpty else {
            throw HarnessError("\(method) \(body) did not fail: \(reply.json)")
        }
        return err
    }

    /// `timeout`: a minute for the CLI calls of most tests; long runs (bench/RELIABILITY.md) give more.
    func cli(_ arguments: [String], timeout: TimeInterval = 60) throws -> CommandResult {
        try Command.run(Self.binary, arguments + ["--socket", socket], timeout: timeout)
    }

    func references(of volume: String) throws -> Int {
        let reply = try pluginOK("VolumeDriver.Get", ["Name": volume])
        let status = (reply["Volume"] as? [String: Any])?["Status"] as? [String: Any]
        return (status?["references"] as? Int) ?? -1
    }
}
