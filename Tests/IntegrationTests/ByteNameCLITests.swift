import ConvoyTestSupport
import Foundation
import XCTest

/// Names are bytes, through everything a volume goes through: a vfs volume holding names that are not UTF-8, é
/// composed and decomposed as two files, a link target and xattr names that are not UTF-8, is snapshotted with
/// nothing left out, backed up, restored, browsed, restored lazily (through the overlay, then as a plain
/// directory), and every volume deleted. (Before: the snapshot left those names out, the restore refused the twins,
/// and a volume holding them could not be deleted.)
final class ByteNameCLITests: XCTestCase {
    var daemon: DaemonHarness!

    override func setUpWithError() throws {
        daemon = try DaemonHarness()
        try daemon.start()
    }

    override func tearDown() {
        daemon.cleanUp()
    }

    func testNamesGoByteForByteThroughEveryPathOfAVolume() throws {
        XCTAssertEqual(try daemon.cli(["create", "source"]).status, 0)
        let source = daemon.root + "/vfs/source"
        try ByteNameTree.populate(source)
        let expected = try ByteNameTree.describe(source)
        let snapshot = try daemon.cli(["snapshot", "create", "source", "--name", "snap"])
        XCTAssertEqual(snapshot.status, 0, snapshot.stderr)
        XCTAssertFalse(snapshot.stderr.contains("left out"), snapshot.stderr)
        let backup = try daemon.cli(["backup", "create", "snap", "--dest", "vfs://\(daemon.directory)/backups"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let url = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let restored = try daemon.cli(["create", "restored", "--backup", url])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        XCTAssertEqual(try ByteNameTree.describe(daemon.root + "/vfs/restored"), expected)

        let target = daemon.root + "/browse/bytes"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let browsed = try daemon.cli(["backup", "mount", url, target])
        XCTAssertEqual(browsed.status, 0, browsed.stderr)
        XCTAssertEqual(try ByteNameTree.describe(target), expected)
        XCTAssertEqual(try daemon.cli(["backup", "umount", target]).status, 0)

        let lazy = try daemon.cli(["create", "lazy", "--backup", url, "--lazy"])
        XCTAssertEqual(lazy.status, 0, lazy.stderr)
        let merged = try daemon.cli(["mount", "lazy"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // Through the overlay, the two names of a hard link are two files (overlayfs without `index`).
        XCTAssertEqual(try ByteNameTree.describe(merged, linkCounts: false),
                       try ByteNameTree.describe(source, linkCounts: false))
        let waited = try daemon.cli(["hydrate", "lazy", "--wait"])
        XCTAssertEqual(waited.status, 0, waited.stderr)
        XCTAssertEqual(try daemon.cli(["umount", "lazy"]).status, 0)
        XCTAssertEqual(daemon.mountsUnderDirectory, [], "overlay and FUSE mount are gone")
        XCTAssertEqual(try ByteNameTree.describe(daemon.root + "/vfs/lazy", directoryTimes: false),
                       try ByteNameTree.describe(source, directoryTimes: false))

        for volume in ["source", "restored", "lazy"] {
            let deleted = try daemon.cli(["delete", volume])
            XCTAssertEqual(deleted.status, 0, "\(volume): \(deleted.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.root + "/vfs/" + volume), volume)
        }
    }
}
