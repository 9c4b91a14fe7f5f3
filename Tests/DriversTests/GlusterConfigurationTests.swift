import ConvoyCore
@testable import Drivers
import XCTest

/// The glusterfs driver's options are checked when the daemon starts, each error naming the option to fix.
final class GlusterConfigurationTests: XCTestCase {
    let base = ["glusterfs.servers": "gl1,gl2", "glusterfs.defaultvolumepool": "pool1"]

    func configuration(_ options: [String: String],
                       resolvable: Set<String> = ["gl1", "gl2", "gl3"]) throws -> GlusterConfiguration {
        try GlusterConfiguration(root: "/var/lib/convoy", options: options) { resolvable.contains($0) }
    }

    func message(_ options: [String: String]) -> String {
        do {
            _ = try configuration(options)
            return "no error"
        } catch {
            return (error as? ConvoyError)?.message ?? "\(error)"
        }
    }

    func testDefaultsAndServersInOrder() throws {
        let parsed = try configuration(base.merging(["glusterfs.servers": " gl2 , gl1,gl3"]) { $1 })
        XCTAssertEqual(parsed.servers, ["gl2", "gl1", "gl3"])
        XCTAssertEqual(parsed.defaultPool, "pool1")
        XCTAssertEqual(parsed.defaultVolumeSize, 100 << 30)
        XCTAssertEqual(parsed.checkInterval, .seconds(10))
        XCTAssertEqual(parsed.directory, "/var/lib/convoy/glusterfs")
        let sized = try configuration(base.merging(["glusterfs.defaultvolumesize": "5G",
                                                    "glusterfs.checkinterval": "2"]) { $1 })
        XCTAssertEqual(sized.defaultVolumeSize, 5 << 30)
        XCTAssertEqual(sized.checkInterval, .seconds(2))
    }

    func testRequiredOptions() {
        XCTAssertTrue(message(["glusterfs.defaultvolumepool": "pool1"]).contains("glusterfs.servers is required"))
        XCTAssertTrue(message(["glusterfs.servers": "gl1"]).contains("glusterfs.defaultvolumepool is required"))
    }

    func testServersMustResolveAndBePlainHostNames() {
        func servers(_ list: String) -> String { message(base.merging(["glusterfs.servers": list]) { $1 }) }
        XCTAssertTrue(servers("gl1,nosuchhost").contains("'nosuchhost' does not resolve"), servers("gl1,nosuchhost"))
        XCTAssertTrue(servers("gl1,,gl2").contains("empty name"))
        XCTAssertTrue(servers("").contains("empty name"))
        XCTAssertTrue(servers("gl1:24007").contains("not a host name"))
        XCTAssertTrue(servers("gl1/x").contains("not a host name"))
        XCTAssertTrue(servers("gl1,gl1").contains("named twice"))
    }

    func testPoolNamesAreSinglePathComponents() {
        for bad in ["..", "a/b", "../etc", ".hidden", "x"] {
            let text = message(base.merging(["glusterfs.defaultvolumepool": bad]) { $1 })
            XCTAssertTrue(text.hasPrefix("glusterfs.defaultvolumepool: invalid gluster volume name"), "\(bad): \(text)")
        }
    }

    func testSizeAndIntervalAreChecked() {
        XCTAssertTrue(message(base.merging(["glusterfs.defaultvolumesize": "lots"]) { $1 })
            .contains("invalid glusterfs.defaultvolumesize 'lots'"))
        XCTAssertTrue(message(base.merging(["glusterfs.checkinterval": "0"]) { $1 })
            .contains("glusterfs.checkinterval: '0'"))
        XCTAssertTrue(message(base.merging(["glusterfs.checkinterval": "1.5"]) { $1 })
            .contains("whole number of seconds"))
    }

    /// Through the registry: real name resolution, the prefix, unknown keys, and the volume's `pool` option.
    func testRegistryBuildsTheDriverWithItsScope() throws {
        let root = NSTemporaryDirectory() + "convoy-gluster-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let drivers = try DriverRegistry.makeDrivers(
            names: ["glusterfs"], root: root,
            options: ["glusterfs.servers": "localhost,127.0.0.2", "glusterfs.defaultvolumepool": "pool1"])
        let driver = try XCTUnwrap(drivers.first as? GlusterfsDriver)
        XCTAssertEqual(driver.scope, .global)
        XCTAssertEqual(driver.volumeOptionKeys, ["pool"])
        XCTAssertEqual(driver.info()["Servers"], "localhost,127.0.0.2")
        XCTAssertFalse(driver.holdsOverlayUpperLayer)
        let bogus = DriverVolume(name: "v1", size: nil, options: ["pool": "../x"])
        XCTAssertThrowsError(try driver.directory(of: bogus)) { error in
            XCTAssertTrue((error as? ConvoyError)?.message.contains("pool: invalid gluster volume name") ?? false,
                          "\(error)")
        }
        XCTAssertEqual(try driver.directory(of: DriverVolume(name: "v1", size: nil, options: ["pool": "other"])),
                       root + "/glusterfs/mounts/other/v1")
        XCTAssertEqual(try driver.directory(of: DriverVolume(name: "v1", size: nil, driverInfo: ["Pool": "recorded"])),
                       root + "/glusterfs/mounts/recorded/v1")
        XCTAssertThrowsError(try DriverRegistry.makeDrivers(
            names: ["glusterfs"], root: root, options: base.merging(["glusterfs.bogus": "1"]) { $1 })) { error in
            XCTAssertTrue((error as? ConvoyError)?.message.contains("unknown option 'glusterfs.bogus'") ?? false,
                          "\(error)")
        }
    }
}
