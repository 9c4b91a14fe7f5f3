@testable import BackupFS
import Backupstore
import ConvoyCore
import Foundation
import XCTest

/// A mount indexes a manifest from a store anyone able to write the bucket can craft (issue 18): it refuses what
/// a restore refuses (ManifestRules), and traps on nothing.
final class UntrustedTreeTests: XCTestCase {
    func manifest(_ entries: [Entry]) -> Manifest {
        let root = Entry(path: "", type: .directory, mode: 0o755, uid: 0, gid: 0, mtimeSeconds: 0,
                         mtimeNanoseconds: 0, size: 0)
        return Manifest(id: "backup-1", volume: "vol", kind: .files, createdAt: "", snapshot: nil, parent: nil,
                        volumeSize: 0, entries: [root] + entries, stats: .init())
    }

    func file(_ path: String, size: UInt64, chunks: [(UInt64, UInt32)]) -> Entry {
        var entry = Entry(path: ByteString(path), type: .file, mode: 0o644, uid: 0, gid: 0, mtimeSeconds: 0,
                          mtimeNanoseconds: 0, size: size)
        entry.chunks = chunks.map { Chunk(hash: String(repeating: "ab", count: 32), offset: $0.0, length: $0.1) }
        return entry
    }

    func assertRefused(_ entries: [Entry], _ problem: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try BackupTree(manifest(entries)), file: file, line: line) { error in
            XCTAssertEqual((error as? ConvoyError)?.kind, .driverFailure, file: file, line: line)
            XCTAssertTrue("\(error)".contains(problem), "\(error) does not say \(problem)", file: file, line: line)
        }
    }

    /// chunk.offset + length overflowed while the chunks were checked: the daemon trapped at mount.
    func testChunkEndsThatOverflowAreRefused() {
        assertRefused([file("f", size: 10, chunks: [(UInt64.max, 2)])], "has chunks past the end of 'f'")
        assertRefused([file("f", size: UInt64.max, chunks: [(UInt64.max - 1, 1)])],
                      "has an impossible size 18446744073709551615 of 'f'")
        assertRefused([file("f", size: 10, chunks: [(0, 0)])], "has an empty chunk in 'f'")
    }

    /// "/abs" was listed under the root, where no lookup could find it; a NUL cut the path in C calls.
    func testUnsafePathsAreRefused() {
        for path in ["/abs", "a\0b", "x/", "./x"] {
            assertRefused([file(path, size: 0, chunks: [])], "has an unsafe path")
        }
    }

    func testAConsistentTreeIsIndexed() throws {
        var link = Entry(path: "h", type: .hardlink, mode: 0, uid: 0, gid: 0, mtimeSeconds: 0, mtimeNanoseconds: 0,
                         size: 0)
        link.target = "f"
        let tree = try BackupTree(manifest([file("f", size: 100, chunks: [(0, 10), (90, 10)]), link]))
        XCTAssertEqual(tree.dataBytes, 20)
        XCTAssertEqual(tree.attributes(of: 1).st_nlink, 2)
        XCTAssertEqual(tree.child(named: "h", of: tree.root), 2)
    }

    /// The tree target's kept inputs (FuzzRegressions beside BackupstoreTests) are refused, not crashed on.
    func testKeptFuzzInputsAreRefused() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("BackupstoreTests/FuzzRegressions/tree").path
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).filter { !$0.hasPrefix(".") }
        XCTAssertFalse(names.isEmpty, "no inputs in \(folder)")
        for name in names.sorted() {
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name)))
            XCTAssertThrowsError(try FuzzEntryPoints.tree(bytes), name) { error in
                XCTAssertTrue(error is ConvoyError, "\(name): \(error)")
            }
        }
    }
}
