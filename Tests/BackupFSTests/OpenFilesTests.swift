@testable import BackupFS
import XCTest

/// The handles of open files: an earlier daemon's handle (after `BackupMount.adopt`) reads the node the kernel
/// names, and one of ours is never taken for another node.
final class OpenFilesTests: XCTestCase {
    func testOwnForeignAndMismatchedHandles() {
        let files = OpenFiles()
        let first = OpenFile(node: 3, path: "a")
        let handle = files.open(first)
        XCTAssertTrue(files.file(handle, node: 3) { XCTFail("not adopted"); return nil } === first)
        XCTAssertNotEqual(files.open(OpenFile(node: 4, path: "b")), handle, "every open gets its own handle")

        // A handle an earlier process made: adopted once, then found again with its read-ahead state.
        let foreign: UInt64 = 0x7fff_0000_0000_0001 ^ handle
        let adopted = files.file(foreign, node: 5) { OpenFile(node: 5, path: "c") }
        XCTAssertEqual(adopted?.node, 5)
        XCTAssertTrue(files.file(foreign, node: 5) { XCTFail("adopted twice"); return nil } === adopted)
        // Not a file: nothing adopted.
        XCTAssertNil(files.file(foreign ^ 2, node: 1) { nil })

        // Our handle named with another node: a file for that node, and ours is left as it was.
        let other = files.file(handle, node: 9) { OpenFile(node: 9, path: "d") }
        XCTAssertEqual(other?.node, 9)
        XCTAssertTrue(files.file(handle, node: 3) { nil } === first)

        files.release(handle)
        XCTAssertNil(files.file(handle, node: 3) { nil }, "released")
    }

    /// Handle 0: a file the kernel opened without asking. Its reads keep read-ahead state per node, a bounded
    /// number of nodes.
    func testFilesOpenedWithoutAskingKeepStatePerNode() {
        let files = OpenFiles()
        let first = files.file(0, node: 3) { OpenFile(node: 3, path: "a") }
        XCTAssertEqual(first?.node, 3)
        XCTAssertTrue(files.file(0, node: 3) { XCTFail("made twice"); return nil } === first)
        XCTAssertEqual(files.file(0, node: 4) { OpenFile(node: 4, path: "b") }?.node, 4)
        XCTAssertTrue(files.file(0, node: 3) { nil } === first, "another node's read left it as it was")
        XCTAssertNil(files.file(0, node: 1) { nil }, "not a file")

        _ = first?.recordRead(0..<2)
        XCTAssertEqual(files.file(0, node: 3) { nil }?.recordRead(2..<3), 3, "sequential across reads")
        for node in 10..<(10 + OpenFiles.nodesWithoutHandle) {
            _ = files.file(0, node: node) { OpenFile(node: node, path: "n") }
        }
        let again = files.file(0, node: 3) { OpenFile(node: 3, path: "a") }
        XCTAssertFalse(again === first, "past the bound, read-ahead state starts over")
    }
}
