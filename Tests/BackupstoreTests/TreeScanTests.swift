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
        let entries = try TreeScanner(root: root).scan()
        let paths = entries.map(\.path)
        XCTAssertEqual(paths.count, Set(paths).count, "an entry listed twice")
        XCTAssertEqual(paths.count, 1 + 1 + 1 + 700 + 20 + 20)  // root, big, big/sub, files, links, hard links
        let children = paths.filter { $0.hasPrefix("big/") && !$0.dropFirst(4).contains("/") }
        XCTAssertEqual(children, children.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
        for index in 0..<20 {
            let hard = try XCTUnwrap(entries.first { $0.path == "big/hard\(index)" })
            let first = try XCTUnwrap(entries.first { $0.path == String(format: "big/f%04d", index) })
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
}
