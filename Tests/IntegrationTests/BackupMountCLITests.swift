import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `convoy backup mount`: a backup browsed through the daemon's real FUSE mount.
final class BackupMountCLITests: XCTestCase {
    var daemon: DaemonHarness!

    override func setUpWithError() throws {
        daemon = try DaemonHarness()
        // The targets below are in the test's directory under /tmp, outside the default browse roots.
        daemon.extraArguments = ["--browse-root", daemon.directory]
        try daemon.start()
    }

    override func tearDown() {
        daemon.cleanUp()
    }

    /// A backup of a populated volume; returns its URL and the tree's description at the snapshot.
    func backedUpVolume() throws -> (url: String, expected: String) {
        XCTAssertEqual(try daemon.cli(["create", "browsed"]).status, 0)
        let source = try TreeDescription.populate(daemon.root + "/vfs/browsed")
        let expected = try TreeDescription.describe(source)
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "browsed", "--name", "browsed-snap"]).status, 0)
        let backup = try daemon.cli(["backup", "create", "browsed-snap", "--dest", "vfs://\(daemon.directory)/backups"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        return (backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines), expected)
    }

    func isMountPoint(_ path: String) -> Bool { daemon.mountsUnderDirectory.contains(path) }

    func testMountedBackupEqualsTheTreeAndUnmounts() throws {
        let (url, expected) = try backedUpVolume()
        let target = daemon.directory + "/browse"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)

        let mounted = try daemon.cli(["backup", "mount", url, target])
        XCTAssertEqual(mounted.status, 0, mounted.stderr)
        XCTAssertTrue(isMountPoint(target), "a real mount at \(target)")
        // Browsing only reads: nothing in the backup is a device, a setuid program, or runs.
        let facts = try mountFacts(target)
        XCTAssertTrue(facts.options.isSuperset(of: ["ro", "nosuid", "nodev", "noexec"]), "\(facts.options)")
        XCTAssertEqual(try TreeDescription.describe(target), expected)
        // Copy one file out, as a user would.
        try Command.check("/bin/cp", [target + "/dir/sub/text.log", daemon.directory + "/copied.log"])
        XCTAssertEqual(try Command.check("/usr/bin/sha256sum", [daemon.directory + "/copied.log"]).prefix(64),
                       try Command.check("/usr/bin/sha256sum",
                                         [daemon.root + "/vfs/browsed/dir/sub/text.log"]).prefix(64))
        // Read-only.
        let write = try Command.run("/bin/sh", ["-c", "echo x > '\(target)/small.txt'"])
        XCTAssertNotEqual(write.status, 0)
        XCTAssertTrue(write.stderr.contains("Read-only file system"), write.stderr)

        let listed = try daemon.cli(["backup", "mounts"])
        XCTAssertTrue(listed.stdout.contains(target) && listed.stdout.contains(url), listed.stdout)
        let again = try daemon.cli(["backup", "mount", url, target])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.contains("already"), again.stderr)

        XCTAssertEqual(try daemon.cli(["backup", "umount", target]).status, 0)
        XCTAssertFalse(isMountPoint(target))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: target), [])
        XCTAssertFalse(try daemon.cli(["backup", "mounts"]).stdout.contains(target))
    }

    func testMountsGoWithTheDaemonAndACrashIsCleanedUpAtTheNextStart() throws {
        let (url, expected) = try backedUpVolume()
        let target = daemon.directory + "/browse"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)

        // A clean stop unmounts.
        XCTAssertEqual(try daemon.cli(["backup", "mount", url, target]).status, 0)
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertFalse(isMountPoint(target), "SIGTERM unmounts what the daemon served")

        // kill -9 leaves a dead mount; the next start removes it.
        try daemon.start()
        XCTAssertEqual(try daemon.cli(["backup", "mount", url, target]).status, 0)
        daemon.crash()
        XCTAssertTrue(isMountPoint(target))
        var info = stat()
        XCTAssertEqual(stat(target + "/small.txt", &info), -1)
        XCTAssertEqual(errno, ENOTCONN, "a FUSE mount without its server answers ENOTCONN")
        try daemon.start()
        XCTAssertFalse(isMountPoint(target), "the dead mount is gone after the restart")
        XCTAssertTrue(daemon.log_().contains("was left by the previous daemon"), daemon.log_())
        // And the backup can be mounted there again.
        XCTAssertEqual(try daemon.cli(["backup", "mount", url, target]).status, 0)
        XCTAssertEqual(try TreeDescription.describe(target), expected)
    }

    func testMountRefusesBadTargetsAndBadURLs() throws {
        let (url, _) = try backedUpVolume()
        let missing = try daemon.cli(["backup", "mount", url, daemon.directory + "/nowhere"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("does not exist"), missing.stderr)
        let full = daemon.directory + "/full"
        try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: full + "/file", contents: Data()))
        let notEmpty = try daemon.cli(["backup", "mount", url, full])
        XCTAssertEqual(notEmpty.status, 1)
        XCTAssertTrue(notEmpty.stderr.contains("not empty"), notEmpty.stderr)
        let empty = daemon.directory + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let noBackup = try daemon.cli(["backup", "mount", "vfs://\(daemon.directory)/backups"
                                       + "?backup=backup-0000000000000000&volume=browsed", empty])
        XCTAssertEqual(noBackup.status, 1)
        XCTAssertFalse(isMountPoint(empty))
        let unmounted = try daemon.cli(["backup", "umount", empty])
        XCTAssertEqual(unmounted.status, 1)
        XCTAssertTrue(unmounted.stderr.contains("no backup is mounted"), unmounted.stderr)
    }

    /// Issue 18: only under --browse-root (here the test's directory), judged with links and `..` resolved;
    /// only from stores this daemon wrote.
    func testMountRefusesTargetsOutsideTheBrowseRootsAndStoresItNeverWrote() throws {
        let (url, _) = try backedUpVolume()
        // A sibling of the root whose name merely starts like it, reached directly, through `..` and by a link.
        let outside = daemon.directory + "-outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: outside) }
        let link = daemon.directory + "/escape"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: outside)
        let name = URL(fileURLWithPath: outside).lastPathComponent
        for target in [outside, daemon.directory + "/../" + name, link] {
            let refused = try daemon.cli(["backup", "mount", url, target])
            XCTAssertEqual(refused.status, 1, target)
            XCTAssertTrue(refused.stderr.contains("\(outside)") && refused.stderr.contains("is outside the "
                + "directories backups are mounted in on this daemon (\(daemon.directory))"), refused.stderr)
        }
        XCTAssertFalse(try Command.check("/bin/cat", ["/proc/self/mountinfo"]).contains(" \(outside) "))

        let inside = daemon.directory + "/inside"
        try FileManager.default.createDirectory(atPath: inside, withIntermediateDirectories: true)
        let query = try XCTUnwrap(url.firstIndex(of: "?"))
        let foreign = try daemon.cli(["backup", "mount", "vfs://\(daemon.directory)/never-written" + url[query...],
                                      inside])
        XCTAssertEqual(foreign.status, 1)
        XCTAssertTrue(foreign.stderr.contains("is not allowed on this daemon"), foreign.stderr)
        XCTAssertFalse(isMountPoint(inside))
        XCTAssertEqual(try daemon.cli(["backup", "mount", url, inside]).status, 0)
        XCTAssertEqual(try daemon.cli(["backup", "umount", inside]).status, 0)
    }
}
