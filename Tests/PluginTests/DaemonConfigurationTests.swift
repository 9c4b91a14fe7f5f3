import Backupstore
import ConvoyCore
import Foundation
@testable import Plugin
import XCTest

final class DaemonConfigurationTests: XCTestCase {
    func testDriverOptionsParse() throws {
        XCTAssertEqual(try DaemonConfiguration.parseDriverOptions(["vfs.path=/a=b"]), ["vfs.path": "/a=b"])
        XCTAssertThrowsError(try DaemonConfiguration.parseDriverOptions(["novalue"]))
        XCTAssertThrowsError(try DaemonConfiguration.parseDriverOptions(["=x"]))
        XCTAssertThrowsError(try DaemonConfiguration.parseDriverOptions(["a.b=1", "a.b=2"]))
    }

    /// `--drivers` and `--backup-destinations`: repeatable, comma-separated, or both.
    func testListOptionsAreRepeatableOrCommaSeparated() {
        XCTAssertEqual(DaemonConfiguration.list(["vfs:///srv/a,s3://b@us-east-1/p", " vfs:///srv/c ", "", "x,,y"]),
                       ["vfs:///srv/a", "s3://b@us-east-1/p", "vfs:///srv/c", "x", "y"])
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

    /// A password written into an endpoint never reaches the state, a message or a request.
    func testCredentialsInEndpointsAreDropped() throws {
        let given = DaemonConfiguration(drivers: ["ebs"],
                                        driverOptions: ["ebs.endpoint": "https://AKIA:s3cr3t@ec2.example:4566/"])
        let saved = SavedDriverConfiguration.resolve(given, saved: nil)
        XCTAssertEqual(saved.options["ebs.endpoint"], "https://ec2.example:4566/")
        XCTAssertFalse(saved.encoded().contains("s3cr3t"))

        let s3 = try XCTUnwrap(try StoreFactory.endpoint(option: "http://user:s3cr3t@127.0.0.1:9000", environment: [:]))
        XCTAssertEqual(s3.absoluteString, "http://127.0.0.1:9000")
        XCTAssertNil(s3.user)
        XCTAssertNil(s3.password)
        do {
            _ = try StoreFactory.endpoint(option: "ftp://user:s3cr3t@host", environment: [:])
            XCTFail("not an http(s) URL")
        } catch {
            XCTAssertTrue(error.message.contains("ftp://host") && !error.message.contains("s3cr3t"), error.message)
        }
    }

    /// Copies of pack indexes are kept per S3 store, a store being a bucket, region and prefix at one endpoint;
    /// none for a directory store.
    func testPackIndexCopiesAreKeptPerS3StoreAndEndpoint() throws {
        let root = NSTemporaryDirectory() + "convoy-index-cache-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let destinations = try BackupDestinations(listed: [], allowsAny: true,
                                                  store: try StateStore(path: root + "/convoy.db"))
        func directory(_ url: String, endpoint: String?) throws -> String? {
            let stores = StoreFactory(s3Endpoint: endpoint.flatMap(URL.init(string:)), destinations: destinations,
                                      packIndexCacheRoot: root + "/cache")
            return stores.packIndexCache(for: try StoreLocation.parse(url))?.directory
        }
        let here = try directory("s3://bucket@us-east-1/backups", endpoint: "http://127.0.0.1:9000")
        XCTAssertNotNil(here)
        XCTAssertTrue(here?.hasPrefix(root + "/cache/") == true, here ?? "")
        XCTAssertEqual(here, try directory("s3://bucket@us-east-1/backups", endpoint: "http://127.0.0.1:9000"))
        XCTAssertNotEqual(here, try directory("s3://bucket@us-east-1/backups", endpoint: "http://127.0.0.1:9001"))
        XCTAssertNotEqual(here, try directory("s3://bucket@us-east-1/other", endpoint: "http://127.0.0.1:9000"))
        XCTAssertNil(try directory("vfs:///srv/backups", endpoint: nil))
    }
}
