import XCTest
@testable import BackupFS

final class LibFuseTests: XCTestCase {
    func testLinkedLibraryIsLibfuse3() {
        // Calls into the real shared library: proves the system library target links and loads.
        XCTAssertTrue(LibFuse.version.hasPrefix("3."), "expected libfuse 3.x, got \(LibFuse.version)")
    }

    func testDeviceStateMatchesTheFilesystem() {
        let exists = access("/dev/fuse", R_OK | W_OK) == 0
        XCTAssertEqual(LibFuse.deviceUsable, exists)
        XCTAssertTrue(LibFuse.summary.contains(LibFuse.version))
    }
}
