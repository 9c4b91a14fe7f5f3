import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The glusterd that scripts/gluster-server started for this run, as its env file describes it.
struct GlusterServer {
    var servers: String
    var pool: String
    var brick: String
    var replicaPool: String
    var replicaBricks: [String]
    var pidFile: String
    var logFile: String

    /// Skips the test when scripts/test did not start a glusterd (CONVOY_SKIP_GLUSTER=1, or a bare `swift test`).
    static func fromEnvironment() throws -> GlusterServer {
        let environment = ProcessInfo.processInfo.environment
        guard let servers = environment["CONVOY_TEST_GLUSTER_SERVERS"],
              let pool = environment["CONVOY_TEST_GLUSTER_POOL"],
              let brick = environment["CONVOY_TEST_GLUSTER_BRICK"],
              let replica = environment["CONVOY_TEST_GLUSTER_REPLICA_POOL"],
              let bricks = environment["CONVOY_TEST_GLUSTER_REPLICA_BRICKS"],
              let pidFile = environment["CONVOY_TEST_GLUSTERD_PIDFILE"],
              let logFile = environment["CONVOY_TEST_GLUSTERD_LOG"] else {
            throw XCTSkip("no glusterd for this run: scripts/test starts one (scripts/gluster-server); "
                + "CONVOY_SKIP_GLUSTER=1 skips it")
        }
        return GlusterServer(servers: servers, pool: pool, brick: brick, replicaPool: replica,
                             replicaBricks: bricks.split(separator: ",").map(String.init), pidFile: pidFile,
                             logFile: logFile)
    }

    /// `--drivers glusterfs --driver-opts …` for a daemon on this server.
    func daemonArguments(checkInterval: Int = 10, defaultSize: String = "64M") -> [String] {
        ["--drivers", "glusterfs",
         "--driver-opts", "glusterfs.servers=\(servers)", "--driver-opts", "glusterfs.defaultvolumepool=\(pool)",
         "--driver-opts", "glusterfs.defaultvolumesize=\(defaultSize)",
         "--driver-opts", "glusterfs.checkinterval=\(checkInterval)"]
    }

    /// The PID of the FUSE client serving `mountpoint` (its command line ends with the mount point).
    static func clientPID(of mountpoint: String) -> pid_t? {
        process { $0.first?.hasSuffix("glusterfs") == true && $0.contains("fuse") && $0.last == mountpoint }
    }

    /// The PID of the brick process serving `brick`.
    static func brickPID(of brick: String) -> pid_t? {
        process { arguments in
            guard arguments.first?.hasSuffix("glusterfsd") == true,
                  let index = arguments.firstIndex(of: "--brick-name"),
                  index + 1 < arguments.count else { return false }
            return arguments[index + 1] == brick
        }
    }

    /// The first process whose command line matches.
    private static func process(_ matches: ([String]) -> Bool) -> pid_t? {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry),
                  let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            if matches(data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }) { return pid }
        }
        return nil
    }

    var glusterdPID: pid_t? {
        (try? String(contentsOfFile: pidFile, encoding: .utf8))
            .flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Starts glusterd again as scripts/gluster-server does (same pid and log files), and waits until it answers.
    func startGlusterd() throws {
        // Not waited for: it runs on, in a session of its own, until scripts/gluster-server stops it. (Command.run
        // would wait forever for a shell that started it: Foundation waits until every inherited copy of its
        // child's socket is closed.)
        let glusterd = Process()
        glusterd.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        glusterd.arguments = ["/usr/sbin/glusterd", "-N", "--log-file=\(logFile)", "--pid-file=\(pidFile)"]
        glusterd.standardInput = FileHandle.nullDevice
        glusterd.standardOutput = FileHandle.nullDevice
        glusterd.standardError = FileHandle.nullDevice
        try glusterd.run()
        try waitUntil("glusterd answers", timeout: 30) {
            (try? Command.run("/usr/sbin/gluster", ["--mode=script", "pool", "list"], timeout: 10))?.status == 0
        }
    }

    /// Starts the replica pool's dead brick again (`volume start force`) and waits until self-heal has given
    /// `directory` on `brick` every file of `files` (name → content). Self-heal creates the missed files first and
    /// fills them after, so contents are what is waited for.
    func restartBrickAndWaitForHeal(brick: String, directory: String, files: [String: String]) throws {
        try Command.check("/usr/sbin/gluster", ["--mode=script", "volume", "start", replicaPool, "force"])
        try waitUntil("self-heal to bring the brick's copy back", timeout: 120) {
            files.allSatisfy { name, content in
                (try? String(contentsOfFile: "\(brick)/\(directory)/\(name)", encoding: .utf8)) == content
            }
        }
    }

    static func kill9AndWait(_ pid: pid_t) throws {
        kill(pid, SIGKILL)
        try waitUntil("process \(pid) to be gone", timeout: 20) { Glibc.kill(pid, 0) != 0 }
    }
}

/// Polls `condition` every 100 ms until it holds, failing after `timeout` seconds.
func waitUntil(_ what: String, timeout: TimeInterval, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return }
        usleep(100_000)
    }
    throw HarnessError("timed out after \(Int(timeout)) s waiting for \(what)")
}
