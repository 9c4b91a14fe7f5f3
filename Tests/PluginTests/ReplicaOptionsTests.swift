import ConvoyCore
@testable import Plugin
import XCTest

/// The create options of replicated volumes: what is accepted, and what is refused by name.
final class ReplicaOptionsTests: XCTestCase {
    func testOptionsAreParsedWithTheirDefaults() throws {
        XCTAssertNil(try ReplicaOptions.parse(["size": "1G"], driver: "vfs"))
        let plain = try XCTUnwrap(try ReplicaOptions.parse(["replica": "vfs:///srv/replicas"], driver: "vfs"))
        XCTAssertEqual(plain.interval, .seconds(60))
        XCTAssertFalse(plain.forceTakeover)
        XCTAssertEqual(plain.leaseSeconds, 180)
        let options = ["replica": "s3://bucket@us-east-1/p", "replicainterval": "5m", "takeover": "force"]
        let forced = try XCTUnwrap(try ReplicaOptions.parse(options, driver: "devicemapper"))
        XCTAssertEqual(forced.interval, .seconds(300))
        XCTAssertTrue(forced.forceTakeover)
        for (text, seconds) in [("90", 90), ("90s", 90), ("2m", 120), ("1h", 3600), ("24h", 86_400)] {
            XCTAssertEqual(try ReplicaOptions.duration(text), .seconds(seconds), text)
        }
    }

    func testWrongOptionsAreNamed() {
        let cases: [([String: String], String, String)] = [
            (["replicainterval": "1m"], "vfs", "needs replica=URL"),
            (["replica": "/srv/replicas"], "vfs", "option replica"),
            (["replica": "vfs:///r"], "glusterfs", "driver glusterfs does not replicate"),
            (["replica": "vfs:///r", "replicainterval": "0s"], "vfs", "replicainterval"),
            (["replica": "vfs:///r", "replicainterval": "25h"], "vfs", "replicainterval"),
            (["replica": "vfs:///r", "replicainterval": "fast"], "vfs", "replicainterval"),
            (["replica": "vfs:///r", "takeover": "yes"], "vfs", "takeover"),
        ]
        for (options, driver, expected) in cases {
            XCTAssertThrowsError(try ReplicaOptions.parse(options, driver: driver), "\(options)") { error in
                XCTAssertTrue((error as? ConvoyError)?.message.contains(expected) ?? false, "\(error)")
            }
        }
    }
}
