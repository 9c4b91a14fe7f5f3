import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A lazy volume read without pause while its daemon restarts and crashes: the FUSE keeper holds the backup
/// mount's connection, the next daemon serves it again, and the reader sees every byte and no error.
final class LazyHandoffTests: XCTestCase {
    var daemon: DaemonHarness!

    override func setUpWithError() throws {
        daemon = try DaemonHarness()
    }

    override func tearDown() {
        daemon.cleanUp()
    }

    struct Reading {
        let process: Process
        let stop: String
        let out: String

        var log: String { (try? String(contentsOfFile: out, encoding: .utf8)) ?? "" }
        var passes: Int { log.split(separator: "\n").filter { $0.hasPrefix("PASS") }.count }

        func waitForMorePasses(than count: Int, seconds: Double = 60) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if passes > count { return true }
                usleep(50_000)
            }
            return false
        }

        /// Stops the reader; its final line.
        func finish() -> String {
            FileManager.default.createFile(atPath: stop, contents: nil)
            let deadline = Date().addingTimeInterval(120)
            while process.isRunning && Date() < deadline { usleep(50_000) }
            if process.isRunning { process.terminate() }
            return log.split(separator: "\n").last.map(String.init) ?? ""
        }
    }

    /// A volume of 40 files of random data, backed up; a lazy volume made from it, mounted, hydrating slowly
    /// (one file per 30 s: the reads below go to the backup). Returns the source directory and the mountpoint.
    func lazyVolume() throws -> (source: String, merged: String) {
        XCTAssertEqual(try daemon.cli(["create", "origin"]).status, 0)
        let source = daemon.root + "/vfs/origin"
        for index in 0..<40 {
            let bytes = (0..<(96 << 10)).map { _ in UInt8.random(in: 0...255) }
            try Data(bytes).write(to: URL(fileURLWithPath: source + "/file\(index)"))
        }
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "origin", "--name", "origin-1"]).status, 0)
        let backup = try daemon.cli(["backup", "create", "origin-1", "--dest", "vfs://\(daemon.directory)/backups"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let url = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try daemon.cli(["create", "lazy", "--backup", url, "--lazy"]).status, 0)
        let merged = try daemon.cli(["mount", "lazy"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return (source, merged)
    }

    func startReader(_ source: String, _ merged: String) throws -> Reading {
        let reading = Reading(process: Process(), stop: daemon.directory + "/stop-reading",
                              out: daemon.directory + "/reader.log")
        // scripts/read-loop: every file read and checked again and again, every cache dropped before each pass.
        reading.process.executableURL = URL(fileURLWithPath: SystemdServiceTests.repository + "/scripts/read-loop")
        reading.process.arguments = [source, merged, reading.stop, reading.out]
        try reading.process.run()
        XCTAssertTrue(reading.waitForMorePasses(than: 1), reading.log)
        return reading
    }

    func testReadsGoOnWithoutAnErrorAcrossARestartAndACrash() throws {
        daemon.extraArguments = ["--hydration-pause", "30"]
        try daemon.start()
        let (source, merged) = try lazyVolume()
        let mountedBefore = try XCTUnwrap(daemon.mountsUnderDirectory.first { $0.hasSuffix("/lazy/backup") })
        let keeper = try XCTUnwrap(daemon.keeperPID, "a lazy volume starts the FUSE keeper")
        let reading = try startReader(source, merged)
        defer { _ = reading.finish() }

        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertTrue(daemon.mountsUnderDirectory.contains(merged), "a clean stop leaves the lazy volume mounted")
        try daemon.start()
        XCTAssertTrue(reading.waitForMorePasses(than: reading.passes + 1), reading.log)
        daemon.crash()
        usleep(300_000)
        try daemon.start()
        XCTAssertTrue(reading.waitForMorePasses(than: reading.passes + 2), reading.log)

        let last = reading.finish()
        XCTAssertTrue(last.hasPrefix("DONE") && last.contains("errors=0"), reading.log)
        XCTAssertFalse(reading.log.contains("ERROR") || reading.log.contains("MISMATCH"), reading.log)
        XCTAssertEqual(daemon.keeperPID, keeper, "one keeper all along")
        XCTAssertTrue(daemon.mountsUnderDirectory.contains(mountedBefore))
        XCTAssertTrue(daemon.log_().contains("serving its backup's mount again"), daemon.log_())
        let hydration = try daemon.cli(["inspect", "lazy"]).stdout
        XCTAssertTrue(hydration.contains("\"hydrating\""), hydration)

        // Gone for good: the volume's mounts go, and the keeper, holding nothing, leaves with the daemon.
        XCTAssertEqual(try daemon.cli(["umount", "lazy"]).status, 0)
        XCTAssertEqual(try daemon.cli(["delete", "lazy"]).status, 0)
        XCTAssertEqual(daemon.stop(), 0)
        let deadline = Date().addingTimeInterval(10)
        while daemon.keeperPID != nil && Date() < deadline { usleep(50_000) }
        XCTAssertNil(daemon.keeperPID, "a keeper with nothing to hold and no daemon exits")
    }

    /// The same crash without the keeper: the reader sees the errors the keeper spares it (the check above can
    /// fail), and the next start mounts the backup afresh.
    func testWithoutTheKeeperACrashFailsReads() throws {
        daemon.extraArguments = ["--hydration-pause", "30", "--fuse-handoff-timeout", "0"]
        try daemon.start()
        let (source, merged) = try lazyVolume()
        XCTAssertNil(daemon.keeperPID)
        let reading = try startReader(source, merged)
        defer { _ = reading.finish() }
        daemon.crash()
        let deadline = Date().addingTimeInterval(30)
        while !reading.log.contains("ERROR") && Date() < deadline { usleep(50_000) }
        XCTAssertTrue(reading.log.contains("ERROR"), reading.log)
    }

    /// A keeper whose daemon does not come back within --fuse-handoff-timeout lets the connections go: reads fail
    /// instead of waiting for ever, and the next start mounts the backup afresh.
    func testAnOrphanedKeeperLetsGoAfterItsTimeout() throws {
        daemon.extraArguments = ["--hydration-pause", "30", "--fuse-handoff-timeout", "3"]
        try daemon.start()
        let (source, merged) = try lazyVolume()
        let reading = try startReader(source, merged)
        defer { _ = reading.finish() }
        daemon.crash()
        let deadline = Date().addingTimeInterval(30)
        while daemon.keeperPID != nil && Date() < deadline { usleep(100_000) }
        XCTAssertNil(daemon.keeperPID, "the keeper left after 3 s without a daemon")
        while !reading.log.contains("ERROR") && Date() < deadline { usleep(50_000) }
        XCTAssertTrue(reading.log.contains("ERROR"), reading.log)
        _ = reading.finish()
        try daemon.start()
        let mountpoint = try daemon.cli(["mount", "lazy"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: mountpoint + "/file7")),
                       try Data(contentsOf: URL(fileURLWithPath: source + "/file7")))
    }

    /// The keeper gone while the daemon runs (an idle keeper exits as a daemon starts, or it is killed): the next
    /// lazy volume's mount is still given to a keeper, a new one, and so is kept across a restart.
    func testAKeeperGoneMeanwhileIsStartedAgainForTheNextLazyVolume() throws {
        daemon.extraArguments = ["--hydration-pause", "30"]
        try daemon.start()
        let (source, _) = try lazyVolume()
        let first = try XCTUnwrap(daemon.keeperPID)
        kill(first, SIGKILL)
        let deadline = Date().addingTimeInterval(10)
        while daemon.keeperPID != nil && Date() < deadline { usleep(50_000) }
        XCTAssertNil(daemon.keeperPID)

        let url = try XCTUnwrap(try daemon.cli(["inspect", "lazy"]).stdout.split(separator: "\"")
            .first { $0.hasPrefix("vfs://") }.map(String.init))
        XCTAssertEqual(try daemon.cli(["create", "lazy2", "--backup", url, "--lazy"]).status, 0)
        let merged = try daemon.cli(["mount", "lazy2"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let second = try XCTUnwrap(daemon.keeperPID, "a keeper started again for the new mount")
        XCTAssertNotEqual(second, first)
        XCTAssertFalse(daemon.log_().contains("cannot give the mount"), daemon.log_())

        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertTrue(daemon.mountsUnderDirectory.contains(merged), "the keeper kept the new volume's mount")
        try daemon.start()
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: merged + "/file7")),
                       try Data(contentsOf: URL(fileURLWithPath: source + "/file7")))
    }
}
