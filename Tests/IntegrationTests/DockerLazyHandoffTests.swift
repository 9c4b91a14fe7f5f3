import ConvoyTestSupport
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A container reading a lazily restored volume in a loop while the daemon restarts and crashes: with the FUSE
/// keeper holding the backup mount, the container's checks never fail (issue 22's test, through a real dockerd).
final class DockerLazyHandoffTests: XCTestCase {
    var daemon: DaemonHarness!
    var engine: DockerEngine!
    var driver = ""

    override func setUpWithError() throws {
        // One file hydrated per 30 s: the container's reads go to the backup through FUSE.
        let setup = try DockerPluginSetup.start(prefix: "cvh", daemonArguments: ["--hydration-pause", "30"])
        (driver, daemon, engine) = (setup.driver, setup.daemon, setup.engine)
    }

    override func tearDown() {
        engine?.stop()
        daemon?.cleanUp()
    }

    func passes() throws -> (count: Int, log: String) {
        let log = try engine.dockerOK(["logs", "reader"])
        return (log.split(separator: "\n").filter { $0.hasPrefix("pass") }.count, log)
    }

    func waitForPasses(beyond count: Int) throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if try passes().count > count { return }
            usleep(100_000)
        }
        XCTFail("the container made no progress: \(try passes().log)")
    }

    func testAContainerReadingALazyVolumeSeesNoErrorAcrossARestartAndACrash() throws {
        XCTAssertEqual(try daemon.cli(["create", "origin"]).status, 0)
        let source = daemon.root + "/vfs/origin"
        for index in 0..<30 {
            let bytes = (0..<(64 << 10)).map { _ in UInt8.random(in: 0...255) }
            try Data(bytes).write(to: URL(fileURLWithPath: source + "/file\(index)"))
        }
        let sums = try Command.check("/bin/sh", ["-c", "cd '\(source)' && sha256sum file*"])
        try sums.write(toFile: source + "/SUMS", atomically: true, encoding: .utf8)
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "origin", "--name", "origin-1"]).status, 0)
        let backup = try daemon.cli(["backup", "create", "origin-1", "--dest", "vfs://\(daemon.directory)/backups"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let url = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try engine.dockerOK(["volume", "create", "-d", driver, "--name", "lazyvol", "-o", "backup=\(url)",
                             "-o", "lazy=true"])
        try engine.dockerOK(["run", "-d", "--name", "reader", "--network", "none", "-v", "lazyvol:/data",
                             "tiny:latest", "sh", "-c",
                             "n=0; cd /data; while :; do if sha256sum -c -s SUMS; then n=$((n+1)); echo pass $n; "
                                + "else echo ERROR; fi; done"])
        // Every cache dropped five times a second: the container's reads keep reaching the FUSE server.
        let dropping = StopFlag()
        let dropper = Thread {
            while !dropping.isSet {
                _ = try? "3".write(toFile: "/proc/sys/vm/drop_caches", atomically: false, encoding: .utf8)
                usleep(200_000)
            }
        }
        dropper.start()
        defer { dropping.set() }

        try waitForPasses(beyond: 2)
        XCTAssertEqual(daemon.stop(), 0)
        usleep(500_000)
        try daemon.start()
        try waitForPasses(beyond: try passes().count + 2)
        daemon.crash()
        usleep(500_000)
        try daemon.start()
        try waitForPasses(beyond: try passes().count + 2)

        let (count, log) = try passes()
        XCTAssertGreaterThan(count, 6)
        XCTAssertFalse(log.contains("ERROR") || log.contains("FAILED") || log.contains("No such"), log)
        XCTAssertEqual(try engine.dockerOK(["inspect", "reader", "--format", "{{.State.Running}}"]), "true")
    }
}
