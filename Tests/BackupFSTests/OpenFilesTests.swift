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
}
