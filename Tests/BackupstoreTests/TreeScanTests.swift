@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest

/// A large directory's children are examined on several threads; the scan must still list every entry once, in
/// byte order, parents first, with hard links after their first path.
final class TreeScanTests: XCTestCase {
    func testALargeDirectoryScansCompleteAndInOrder() throws {
        let root = NSTemporaryDirectory() + "convoy-scan-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: root) }
        let big = root + "/big"
        try FileManager.default.createDirectory(atPath: big + "/sub", withIntermediateDirectories: true)
        for index in 0..<700 {
            try TreeFixture.write(big + String(format: "/f%04d", index), Array("file \(index)".utf8))
        }
        for index in 0..<20 {
            XCTAssertEqual(symlink("f\(index)", big + "/link\(index)"), 0)
            XCTAssertEqual(link(big + String(format: "/f%04d", index), big + "/hard\(index)"), 0)
        }
        let entries = try TreeScanner(root: root).scan().entries
        let paths = entries.map(\.path)
        XCTAssertEqual(paths.count, Set(paths).count, "an entry listed twice")
        XCTAssertEqual(paths.count, 1 + 1 + 1 + 700 + 20 + 20)  // root, big, big/sub, files, links, hard links
        let children = paths.filter { $0.hasPrefix("big/") && !$0.description.dropFirst(4).contains("/") }
        XCTAssertEqual(children, children.sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) })
        for index in 0..<20 {
            let hard = try XCTUnwrap(entries.first { $0.path == "big/hard\(index)" })
            let first = try XCTUnwrap(entries.first { $0.path == ByteString(String(format: "big/f%04d", index)) })
            // "f…" sorts before "hard…": the file is the first path, the later name its hard link.
            XCTAssertEqual(first.type, .file)
            XCTAssertEqual(hard.type, .hardlink)
            XCTAssertEqual(hard.target, first.path)
            let symlinkEntry = try XCTUnwrap(entries.first { $0.path == "big/link\(index)" })
            XCTAssertEqual(symlinkEntry.type, .symlink)
            XCTAssertEqual(symlinkEntry.target, "f\(index)")
        }
        XCTAssertEqual(entries.first { $0.path == "big/f0042" }?.size, UInt64("file 42".utf8.count))
    }

    /// Batches handed over while scanning concatenate to the same entries in the same order; a batch ends right
    /// after a file large enough to be read directly (so its reading can start), and the consumer can stop the scan.
    func testBatchesConcatenateToTheScanAndEndAfterALargeFile() throws {
        let root = NSTemporaryDirectory() + "convoy-scan-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/a/deep/er", withIntermediateDirectories: true)
        for index in 0..<600 {
            try TreeFixture.write(root + String(format: "/a/f%04d", index), Array("small \(index)".utf8))
        }
        // Sparse, so the test writes no data: only the size decides.
        let large = root + "/a/f0300-large"
        XCTAssertTrue(FileManager.default.createFile(atPath: large, contents: nil))
        XCTAssertEqual(truncate(large, off_t(SourceFile.directThreshold)), 0)
        try TreeFixture.write(root + "/a/deep/er/last", Array("last".utf8))

        let whole = try TreeScanner(root: root).scan().entries
        var batches: [[Entry]] = []
        try TreeScanner(root: root).scan(batchSize: 100) { batch in
            batches.append(batch.entries)
            return true
        }
        XCTAssertEqual(batches.flatMap { $0 }.map(\.path), whole.map(\.path))
        XCTAssertEqual(batches.flatMap { $0 }.map(\.size), whole.map(\.size))
        XCTAssertTrue(batches.allSatisfy { !$0.isEmpty && $0.count <= 100 })
        let endsAtLarge = try XCTUnwrap(batches.firstIndex { $0.last?.path == "a/f0300-large" })
        XCTAssertLessThan(endsAtLarge, batches.count - 1, "the large file's batch should not wait for the rest")

        var delivered = 0
        XCTAssertThrowsError(try TreeScanner(root: root).scan(batchSize: 100) { _ in
            delivered += 1
            return delivered < 2
        })
        XCTAssertEqual(delivered, 2, "the scan went on after being told to stop")
    }
}
