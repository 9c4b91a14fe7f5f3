import ConvoyCore
@testable import Drivers
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class VFSDriverTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "convoy-vfs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    func testVolumeIsADirectoryUnderThePath() async throws {
        let driver = try VFSDriver(context: DriverContext(root: root, options: [:]))
        XCTAssertEqual(driver.path, root + "/vfs")
        let volume = DriverVolume(name: "data1", size: 1 << 30)
        let info = try await driver.createVolume(volume)
        XCTAssertEqual(info["Path"], root + "/vfs/data1")
        var isDirectory: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/vfs/data1", isDirectory: &isDirectory))
        XCTAssertTrue(isDirectory.boolValue)
        let attributes = try FileManager.default.attributesOfItem(atPath: root + "/vfs/data1")
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o755)

        let mountpoint = try await driver.mountVolume(volume)
        XCTAssertEqual(mountpoint, root + "/vfs/data1")
        XCTAssertTrue(driver.dataExists(volume))

        try Data("hello".utf8).write(to: URL(fileURLWithPath: mountpoint + "/f"))
        try FileManager.default.createDirectory(atPath: mountpoint + "/sub/deeper", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: mountpoint + "/escape", withDestinationPath: root)
        try await driver.deleteVolume(volume)
        XCTAssertFalse(FileManager.default.fileExists(atPath: mountpoint))
        // The symlink was removed, not followed.
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/vfs"))
        // Deleting again is harmless.
        try await driver.deleteVolume(volume)
    }

    func testDeleteNeverEmptiesAFilesystemMountedInsideTheVolume() async throws {
        let driver = try VFSDriver(context: DriverContext(root: root, options: [:]))
        let volume = DriverVolume(name: "holder", size: nil)
        _ = try await driver.createVolume(volume)
        let inner = root + "/vfs/holder/mnt"
        try FileManager.default.createDirectory(atPath: inner, withIntermediateDirectories: true)
        XCTAssertEqual(mount("tmpfs", inner, "tmpfs", 0, nil), 0, "mount a tmpfs inside the volume")
        defer { umount2(inner, Int32(MNT_DETACH)) }
        XCTAssertTrue(FileManager.default.createFile(atPath: inner + "/precious", contents: Data("keep".utf8)))

        do {
            try await driver.deleteVolume(volume)
            XCTFail("deleting across a mount point must fail")
        } catch {
            XCTAssertTrue(error.message.contains("is a mount point"), error.message)
        }
        XCTAssertEqual(try String(contentsOfFile: inner + "/precious", encoding: .utf8), "keep")
        XCTAssertEqual(umount2(inner, 0), 0)
        try await driver.deleteVolume(volume)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/vfs/holder"))
    }

    func testCreateRefusesAnExistingDirectory() async throws {
        let driver = try VFSDriver(context: DriverContext(root: root, options: ["vfs.path": root + "/elsewhere"]))
        try FileManager.default.createDirectory(atPath: root + "/elsewhere/taken", withIntermediateDirectories: true)
        do {
            _ = try await driver.createVolume(DriverVolume(name: "taken", size: nil))
            XCTFail("created over an existing directory")
        } catch {
            XCTAssertEqual(error.kind, .conflict)
        }
    }

    func testMountOfVanishedDataSaysSo() async throws {
        let driver = try VFSDriver(context: DriverContext(root: root, options: [:]))
        do {
            _ = try await driver.mountVolume(DriverVolume(name: "ghost", size: nil))
            XCTFail("mounted a missing directory")
        } catch {
            XCTAssertTrue(error.message.contains("missing"), error.message)
        }
    }

    func testPathMustBeAbsoluteAndClean() {
        XCTAssertThrowsError(try VFSDriver(context: DriverContext(root: root, options: ["vfs.path": "relative"])))
        XCTAssertThrowsError(try VFSDriver(context: DriverContext(root: root, options: ["vfs.path": root + "/../x"])))
    }
}
