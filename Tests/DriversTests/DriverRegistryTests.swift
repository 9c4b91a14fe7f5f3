import ConvoyCore
@testable import Drivers
import XCTest

final class DriverRegistryTests: XCTestCase {
    let root = NSTemporaryDirectory() + "convoy-registry-\(UUID().uuidString)"

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    private func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return ""
    }

    func testBuildsVfsWithItsOptions() throws {
        let drivers = try DriverRegistry.makeDrivers(names: ["vfs"], root: root, options: ["vfs.path": root + "/v"])
        XCTAssertEqual(drivers.map(\.name), ["vfs"])
        XCTAssertEqual((drivers.first as? VFSDriver)?.path, root + "/v")
    }

    func testErrorsNameTheOffendingOption() {
        XCTAssertTrue(message { _ = try DriverRegistry.makeDrivers(names: ["vfs"], root: root, options: ["vfs.bogus": "1"]) }
            .contains("'vfs.bogus'"))
        XCTAssertTrue(message { _ = try DriverRegistry.makeDrivers(names: ["vfs"], root: root, options: ["nodot": "1"]) }
            .contains("'nodot'"))
        XCTAssertTrue(message { _ = try DriverRegistry.makeDrivers(names: ["vfs"], root: root, options: ["ebs.region": "x"]) }
            .contains("not enabled"))
        XCTAssertTrue(message { _ = try DriverRegistry.makeDrivers(names: ["nosuch"], root: root, options: [:]) }
            .contains("unknown driver 'nosuch'"))
        XCTAssertTrue(message { _ = try DriverRegistry.makeDrivers(names: ["devicemapper"], root: root, options: [:]) }
            .contains("not available in this build"))
        XCTAssertTrue(message { _ = try DriverRegistry.makeDrivers(names: ["vfs", "vfs"], root: root, options: [:]) }
            .contains("twice"))
        XCTAssertTrue(message { _ = try DriverRegistry.makeDrivers(names: [], root: root, options: [:]) }
            .contains("at least one"))
    }

    func testPathGuardKeepsNamesInsideTheRoot() throws {
        XCTAssertEqual(try PathGuard.child(of: "/r", named: "v1"), "/r/v1")
        XCTAssertEqual(try PathGuard.child(of: "/r/", named: "v1"), "/r/v1")
        for bad in ["..", ".", "a/b", "", "../etc"] {
            XCTAssertThrowsError(try PathGuard.child(of: "/r", named: bad), bad)
        }
        XCTAssertEqual(try PathGuard.absoluteDirectory("//srv//vols/", option: "x"), "/srv/vols")
    }
}
