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
        XCTAssertTrue(message {
            _ = try DriverRegistry.makeDrivers(names: ["vfs"], root: root, options: ["vfs.bogus": "1"])
        }.contains("'vfs.bogus'"))
        XCTAssertTrue(message {
            _ = try DriverRegistry.makeDrivers(names: ["vfs"], root: root, options: ["nodot": "1"])
        }.contains("'nodot'"))
        XCTAssertTrue(message {
            _ = try DriverRegistry.makeDrivers(names: ["vfs"], root: root, options: ["ebs.region": "x"])
        }.contains("not enabled"))
        XCTAssertTrue(message { _ = try DriverRegistry.makeDrivers(names: ["nosuch"], root: root, options: [:]) }
            .contains("unknown driver 'nosuch'"))
        XCTAssertTrue(message { _ = try DriverRegistry.makeDrivers(names: ["vfs", "vfs"], root: root, options: [:]) }
            .contains("twice"))
        XCTAssertTrue(message { _ = try DriverRegistry.makeDrivers(names: [], root: root, options: [:]) }
            .contains("at least one"))
    }

    func testDevicemapperOptionsAreValidatedAtStart() {
        func dm(_ options: [String: String]) -> String {
            message { _ = try DriverRegistry.makeDrivers(names: ["devicemapper"], root: root, options: options) }
        }
        XCTAssertTrue(dm(["dm.thinpoolblocksize": "100K"]).contains("not a multiple of 64K"))
        XCTAssertTrue(dm(["dm.thinpoolblocksize": "2G"]).contains("between 64K and 1G"))
        XCTAssertTrue(dm(["dm.fs": "btrfs"]).contains("'btrfs' is not one of ext4, xfs"))
        XCTAssertTrue(dm(["dm.datadev": "/dev/sdb"]).contains("give both dm.datadev and dm.metadatadev"))
        XCTAssertTrue(dm(["dm.datadev": "sdb", "dm.metadatadev": "/dev/sdc"]).contains("absolute path"))
        XCTAssertTrue(dm(["dm.thinpoolname": "../pool"]).contains("invalid thin pool name"))
        XCTAssertTrue(dm(["dm.defaultvolumesize": "1M"]).contains("at least 16M"))
        XCTAssertTrue(dm(["dm.bogus": "1"]).contains("unknown option 'dm.bogus'"))
        XCTAssertNoThrow(try DriverRegistry.makeDrivers(names: ["devicemapper"], root: root, options: [
            "dm.thinpoolblocksize": "64K", "dm.fs": "xfs", "dm.defaultvolumesize": "1G", "dm.thinpoolname": "pool-1"]))
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
