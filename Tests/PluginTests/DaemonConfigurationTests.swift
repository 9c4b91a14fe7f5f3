import ConvoyCore
@testable import Plugin
import XCTest

final class DaemonConfigurationTests: XCTestCase {
    func testDriverOptionsParse() throws {
        XCTAssertEqual(try DaemonConfiguration.parseDriverOptions(["vfs.path=/a=b"]), ["vfs.path": "/a=b"])
        XCTAssertThrowsError(try DaemonConfiguration.parseDriverOptions(["novalue"]))
        XCTAssertThrowsError(try DaemonConfiguration.parseDriverOptions(["=x"]))
        XCTAssertThrowsError(try DaemonConfiguration.parseDriverOptions(["a.b=1", "a.b=2"]))
    }

    func testSavedDriversAreUsedWhenNoneAreGiven() {
        let saved = SavedDriverConfiguration(drivers: ["vfs"], options: ["vfs.path": "/old", "vfs.x": "1"])
        let noFlags = SavedDriverConfiguration.resolve(DaemonConfiguration(driverOptions: ["vfs.path": "/new"]),
                                                       saved: saved)
        XCTAssertEqual(noFlags, SavedDriverConfiguration(drivers: ["vfs"], options: ["vfs.path": "/new", "vfs.x": "1"]))
        let flags = SavedDriverConfiguration.resolve(DaemonConfiguration(drivers: ["vfs"]), saved: saved)
        XCTAssertEqual(flags, SavedDriverConfiguration(drivers: ["vfs"], options: [:]))
        let first = SavedDriverConfiguration.resolve(DaemonConfiguration(), saved: nil)
        XCTAssertEqual(first.drivers, ["vfs"])
        XCTAssertEqual(SavedDriverConfiguration.decode(saved.encoded()), saved)
    }
}
