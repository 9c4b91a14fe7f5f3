@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest

/// Names are bytes: names, link targets and xattr names that are not UTF-8, and é composed and decomposed as two
/// names, go through a scan, a backup, the manifest's encoding and a restore byte for byte. (Before, the scan left
/// names that are not UTF-8 out, and a restore refused the twins as "two entries at" one path.)
final class ByteNameTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = try TreeFixture.temporaryDirectory("bytes")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    func testNamesRoundTripByteForByteThroughBackupAndRestore() async throws {
        let source = root + "/source", restored = root + "/restored"
        for directory in [source, restored] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        try ByteNameTree.populate(source)
        let repository = BackupRepository(store: try FileObjectStore(root: root + "/store"))
        let outcome = try await FileBackupWriter(repository: repository).backup(.init(
            source: source, volume: "bytes", backupID: "backup-bytes", snapshot: nil, parent: nil, volumeSize: 0))
        XCTAssertEqual(outcome.skippedCount, 0, "\(outcome.skipped)")
        // What the restore reads is what the store holds: the manifest as encoded, decoded again.
        let manifest = try ManifestCodec.decode(ManifestCodec.encode(outcome.manifest))
        XCTAssertEqual(manifest, outcome.manifest)
        try await FileRestorer(repository: repository).restore(manifest, into: restored)

        let expected = try ByteNameTree.describe(source)
        XCTAssertEqual(expected.count, 11, expected.joined(separator: "\n"))
        XCTAssertEqual(try ByteNameTree.describe(restored), expected)
    }

    /// The manifest's own view: each name once, with its exact bytes, twins apart, the hard link naming the
    /// composed file (not the decomposed twin), and xattr names kept.
    func testTheScanRecordsEachNameWithItsBytes() throws {
        let source = root + "/source"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try ByteNameTree.populate(source)
        let scan = try TreeScanner(root: source).scan()
        XCTAssertTrue(scan.skipped.isEmpty, "\(scan.skipped)")
        let byPath = Dictionary(uniqueKeysWithValues: scan.entries.map { ($0.path, $0) })
        let composed = ByteString(bytes: [0xC3, 0xA9]), decomposed = ByteString(bytes: [0x65, 0xCC, 0x81])
        XCTAssertNotEqual(composed, decomposed)
        XCTAssertEqual(byPath[composed]?.size, UInt64("composed é".utf8.count))
        XCTAssertEqual(byPath[decomposed]?.size, UInt64("decomposed é, a different file".utf8.count))
        let hardLink = try XCTUnwrap(byPath[ByteString(bytes: [0xF0] + Array("zz".utf8))])
        XCTAssertEqual(hardLink.type, .hardlink)
        XCTAssertEqual(hardLink.target?.bytes, [0xC3, 0xA9])
        let link = try XCTUnwrap(byPath["link"])
        XCTAssertEqual(link.target?.bytes, Array("caf".utf8) + [0xE9, 0x2F, 0xFF, 0xFE] + Array("name".utf8))
        XCTAssertEqual(Set(byPath[composed]?.xattrs?.keys.map(\.bytes) ?? []),
                       [Array("user.".utf8) + [0xFF], Array("user.".utf8) + [0xC3, 0xA9],
                        Array("user.".utf8) + [0x65, 0xCC, 0x81]])
        // Messages show what cannot be text as escapes, never as replacement characters.
        XCTAssertEqual(ManifestRules.quoted(ByteString(bytes: Array("caf".utf8) + [0xE9])), "'caf\\xE9'")
    }
}
