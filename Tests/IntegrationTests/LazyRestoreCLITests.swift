import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `convoy create --backup URL --lazy`: a volume usable at once over a real FUSE mount of its backup and a real
/// overlay, hydrated in the background, and a plain directory afterwards.
final class LazyRestoreCLITests: XCTestCase {
    var daemon: DaemonHarness!

    override func setUpWithError() throws {
        daemon = try DaemonHarness()
        // Slow hydration down so the test can act while it runs.
        daemon.extraArguments = ["--hydration-pause", "0.4"]
        try daemon.start()
    }

    override func tearDown() {
        daemon.cleanUp()
    }

    /// A populated volume with a dozen 1 MB files, backed up; returns the backup URL and the source directory.
    func backedUpSource() throws -> (url: String, source: String) {
        XCTAssertEqual(try daemon.cli(["create", "source"]).status, 0)
        let source = try TreeDescription.populate(daemon.root + "/vfs/source")
        try Command.check("/bin/sh", ["-c", "mkdir '\(source)/data' && for i in $(seq 10 21); do "
                                    + "head -c 1000000 /dev/urandom > '\(source)'/data/f$i.bin; done"])
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "source", "--name", "source-snap"]).status, 0)
        let backup = try daemon.cli(["backup", "create", "source-snap", "--dest", "vfs://\(daemon.directory)/backups"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        return (backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines), source)
    }

    func hydration(_ volume: String) throws -> [String: Any] {
        let result = try daemon.cli(["hydrate", volume])
        XCTAssertEqual(result.status, 0, result.stderr)
        return (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    func sha256(_ path: String) throws -> String {
        String(try Command.check("/usr/bin/sha256sum", [path]).prefix(64))
    }

    /// Whiteouts and overlayfs attributes anywhere under `directory` (python reads xattrs without following links).
    func overlayTraces(_ directory: String) throws -> String {
        try Command.check("/usr/bin/python3", ["-c", """
            import os, stat, sys
            for d, dirs, files in os.walk(sys.argv[1]):
                for n in [d] + [os.path.join(d, f) for f in files + dirs]:
                    st = os.lstat(n)
                    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0: print("whiteout", n)
                    for a in os.listxattr(n, follow_symlinks=False):
                        if a.startswith("trusted.overlay."): print("xattr", n, a)
            """, directory])
    }

    func testLazyVolumeIsUsableAtOnceKeepsWritesAndBecomesAPlainDirectory() throws {
        let (url, source) = try backedUpSource()
        let created = try daemon.cli(["create", "lazy", "--backup", url, "--lazy"])
        XCTAssertEqual(created.status, 0, created.stderr)
        XCTAssertTrue(created.stdout.contains("\"Hydration\""), created.stdout)
        let mountpoint = try daemon.cli(["mount", "lazy"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(mountpoint, daemon.root + "/lazy/lazy/merged")

        // The last file of the backup is readable while hydration has not reached it.
        XCTAssertEqual(try sha256(mountpoint + "/data/f21.bin"), try sha256(source + "/data/f21.bin"))
        let early = try hydration("lazy")
        XCTAssertEqual(early["State"] as? String, "hydrating")
        XCTAssertLessThan(early["FilesDone"] as? Int ?? -1, early["FilesTotal"] as? Int ?? 0, "\(early)")
        let docker = try daemon.pluginOK("VolumeDriver.Get", ["Name": "lazy"])
        let status = (docker["Volume"] as? [String: Any])?["Status"] as? [String: Any]
        XCTAssertEqual(status?["hydration"] as? String, "hydrating", "\(docker)")
        XCTAssertNotNil(status?["hydrationTotalBytes"] as? Int)

        // Writes during hydration: a new file, an appended file, a deleted file; the same on a copy of the source.
        let expected = daemon.directory + "/expected"
        try Command.check("/bin/cp", ["-a", source, expected])
        for tree in [mountpoint, expected] {
            try Command.check("/bin/sh", ["-c", """
                set -e; cd '\(tree)'
                echo new > new.txt; echo appended >> small.txt; rm data/f10.bin
                touch -d '2021-05-06 07:08:09' new.txt small.txt
                """])
        }
        let waited = try daemon.cli(["hydrate", "lazy", "--wait"])
        XCTAssertEqual(waited.status, 0, waited.stderr)
        XCTAssertTrue(waited.stdout.contains("\"State\" : \"complete\""), waited.stdout)
        // Through the overlay, the two names of a hard link are two files (overlayfs without `index`).
        XCTAssertEqual(try TreeDescription.describe(mountpoint, directoryTimes: false, linkCounts: false),
                       try TreeDescription.describe(expected, directoryTimes: false, linkCounts: false))

        // Still in use: the overlay stays until the last reference goes; then the volume is a plain directory.
        XCTAssertTrue(daemon.mountsUnderDirectory.contains(mountpoint))
        XCTAssertEqual(try daemon.cli(["umount", "lazy"]).status, 0)
        XCTAssertEqual(daemon.mountsUnderDirectory, [], "overlay and FUSE mount are gone")
        let plain = daemon.root + "/vfs/lazy"
        XCTAssertEqual(try overlayTraces(plain), "")
        XCTAssertEqual(try TreeDescription.describe(plain, directoryTimes: false),
                       try TreeDescription.describe(expected, directoryTimes: false))
        XCTAssertEqual(try daemon.cli(["mount", "lazy"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines), plain)
        let inspect = try daemon.cli(["inspect", "lazy"])
        XCTAssertFalse(inspect.stdout.contains("Hydration") || inspect.stdout.contains("LazyBackup"), inspect.stdout)
        XCTAssertEqual(try hydration("lazy")["State"] as? String, "local")
    }

    func testHydrationResumesAfterTheDaemonIsKilled() throws {
        let (url, source) = try backedUpSource()
        let expected = try TreeDescription.describe(source)
        XCTAssertEqual(try daemon.cli(["create", "lazy", "--backup", url, "--lazy"]).status, 0)
        usleep(1_500_000)
        let before = try hydration("lazy")
        XCTAssertEqual(before["State"] as? String, "hydrating")
        daemon.crash()

        daemon.extraArguments = []
        try daemon.start()
        XCTAssertTrue(daemon.log_().contains("hydration resumes"), daemon.log_())
        let waited = try daemon.cli(["hydrate", "lazy", "--wait"])
        XCTAssertEqual(waited.status, 0, waited.stderr)
        // Nothing references the volume: it became a plain directory as soon as hydration completed.
        let plain = daemon.root + "/vfs/lazy"
        for _ in 0..<100 where !daemon.mountsUnderDirectory.isEmpty { usleep(100_000) }
        XCTAssertEqual(daemon.mountsUnderDirectory, [])
        XCTAssertEqual(try overlayTraces(plain), "")
        XCTAssertEqual(try TreeDescription.describe(plain), expected)
    }

    /// A daemon that kills itself while serving its own request (the hydration's first copy-up lists the backup
    /// mount's xattrs; the failpoint is there) exits all the same: its FUSE keeper answers the request the dead
    /// serving thread left. Without that it never finished dying, and kept its lock: no daemon could start.
    func testADaemonKilledWhileServingItsOwnRequestExitsAndTheNextOneHydrates() throws {
        let (url, source) = try backedUpSource()
        let expected = try TreeDescription.describe(source)
        XCTAssertEqual(daemon.stop(), 0)
        daemon.environment["CONVOY_FAILPOINT"] = "fuse-listxattr"
        try daemon.start()
        // Its answer may be lost: hydration starts as the volume is made, and the daemon dies at its first file.
        _ = try daemon.cli(["create", "lazy", "--backup", url, "--lazy"])
        // If not, the cleanup aborts its FUSE connections so that it can.
        let exited = daemon.waitForExit(timeout: 30)
        XCTAssertTrue(exited, "the daemon killed at its failpoint never finished dying")
        guard exited else { return }
        let keeperLog = (try? String(contentsOfFile: daemon.root + "/fuse-keeper.log", encoding: .utf8)) ?? ""
        XCTAssertTrue(keeperLog.contains("of its own request(s)"), keeperLog)

        daemon.environment = [:]
        daemon.extraArguments = []
        try daemon.start()
        let waited = try daemon.cli(["hydrate", "lazy", "--wait"])
        XCTAssertEqual(waited.status, 0, waited.stderr)
        for _ in 0..<100 where !daemon.mountsUnderDirectory.isEmpty { usleep(100_000) }
        XCTAssertEqual(daemon.mountsUnderDirectory, [])
        XCTAssertEqual(try TreeDescription.describe(daemon.root + "/vfs/lazy"), expected)
    }

    /// kill -9 in the middle of a finish (its whiteouts removed, its record still lazy): the restart completes
    /// the finish instead of mounting the overlay again, so a file deleted during hydration stays deleted.
    func testAFinishInterruptedByACrashIsCompletedAtStart() throws {
        XCTAssertEqual(daemon.stop(), 0)
        daemon.environment = ["CONVOY_FAILPOINT": "lazy-finish-cleaned"]
        try daemon.start()
        let (url, source) = try backedUpSource()
        XCTAssertEqual(try daemon.cli(["create", "lazy", "--backup", url, "--lazy"]).status, 0)
        let mountpoint = try daemon.cli(["mount", "lazy"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let expected = daemon.directory + "/expected"
        try Command.check("/bin/cp", ["-a", source, expected])
        for tree in [mountpoint, expected] {
            try Command.check("/bin/sh", ["-c", "set -e; cd '\(tree)'; rm data/f10.bin; echo new > new.txt; "
                                        + "touch -d '2021-05-06 07:08:09' new.txt"])
        }
        XCTAssertEqual(try daemon.cli(["hydrate", "lazy", "--wait"]).status, 0)
        // The last unmount finishes the volume; the daemon dies half way through.
        _ = try daemon.cli(["umount", "lazy"])
        for _ in 0..<100 where daemon.isRunning { usleep(100_000) }
        XCTAssertFalse(daemon.isRunning, "the failpoint was not reached")
        daemon.crash()
        XCTAssertTrue(FileManager.default.fileExists(atPath: daemon.root + "/lazy/lazy/finishing"))

        daemon.environment = [:]
        daemon.extraArguments = []
        try daemon.start()
        XCTAssertTrue(daemon.log_().contains("completed its finish"), daemon.log_())
        let plain = daemon.root + "/vfs/lazy"
        XCTAssertFalse(FileManager.default.fileExists(atPath: plain + "/data/f10.bin"), "a deleted file came back")
        XCTAssertEqual(try overlayTraces(plain), "")
        XCTAssertEqual(try TreeDescription.describe(plain, directoryTimes: false),
                       try TreeDescription.describe(expected, directoryTimes: false))
        XCTAssertEqual(try daemon.cli(["mount", "lazy"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines), plain)
        XCTAssertEqual(try hydration("lazy")["State"] as? String, "local")
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.root + "/lazy/lazy"), "the lazy directory stays")
    }

    func testDeletingAVolumeThatHydratesLeavesNothingMounted() throws {
        let (url, _) = try backedUpSource()
        XCTAssertEqual(try daemon.cli(["create", "lazy", "--backup", url, "--lazy"]).status, 0)
        XCTAssertFalse(daemon.mountsUnderDirectory.isEmpty)
        let deleted = try daemon.cli(["delete", "lazy"])
        XCTAssertEqual(deleted.status, 0, deleted.stderr)
        XCTAssertEqual(daemon.mountsUnderDirectory, [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.root + "/vfs/lazy"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.root + "/lazy/lazy"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.root + "/vfs/.convoy-work/lazy"))
        // The name is free again, and a lazy create without a backup is refused.
        let noBackup = try daemon.cli(["create", "lazy", "--lazy"])
        XCTAssertNotEqual(noBackup.status, 0)
        XCTAssertTrue(noBackup.stderr.contains("--lazy needs --backup"), noBackup.stderr)
    }
}
