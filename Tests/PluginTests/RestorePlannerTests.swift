import ConvoyCore
import Foundation
@testable import Plugin
import XCTest

/// The one step every restore shares: which size and driver a new volume gets for a backup, and that nothing of
/// it remains when filling it fails.
final class RestorePlannerTests: XCTestCase {
    func testAFileRestoreTakesTheRecordedSizeUnlessOneIsGiven() async throws {
        let fixture = try ServiceFixture(self)
        let recorded = try await fixture.planner.createForFiles(name: "r1", options: [:], recordedSize: 5 << 30) {
            directory, driver, _ throws(ConvoyError) in
            XCTAssertEqual(driver.name, "vfs")
            XCTAssertTrue(FileManager.default.createFile(atPath: directory + "/marker", contents: Data("x".utf8)))
            return ["Restored": "yes"]
        }
        XCTAssertEqual(recorded.size, 5 << 30)
        XCTAssertEqual(recorded.driverInfo["Restored"], "yes", "what populate returns joins the record")
        XCTAssertTrue(FileManager.default.fileExists(atPath: try fixture.directory(of: "r1") + "/marker"))

        let given = try await fixture.planner.createForFiles(name: "r2", options: ["size": "1G"],
                                                             recordedSize: 5 << 30) {
            _, _, _ throws(ConvoyError) in [:]
        }
        XCTAssertEqual(given.size, 1 << 30)
        let unknown = try await fixture.planner.createForFiles(name: "r3", options: [:], recordedSize: 0) {
            _, _, _ throws(ConvoyError) in [:]
        }
        XCTAssertEqual(unknown.size, 0)
    }

    func testAFailedFillLeavesNoVolume() async throws {
        let fixture = try ServiceFixture(self)
        let kind = await errorKind {
            _ = try await fixture.planner.createForFiles(name: "broken", options: [:], recordedSize: 0) {
                path, _, _ throws(ConvoyError) in
                _ = FileManager.default.createFile(atPath: path + "/half", contents: Data("half".utf8))
                throw ConvoyError(.driverFailure, "the store went away")
            }
        }
        XCTAssertEqual(kind, .driverFailure)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.root + "/vfs/broken"),
                       "the half-filled directory is removed")
        XCTAssertThrowsError(try fixture.volumes.get("broken"))
        XCTAssertTrue(try fixture.store.volumes().isEmpty, "no row is left either")
    }

    func testABlockImageNeedsABlockDriver() async throws {
        let fixture = try ServiceFixture(self)
        XCTAssertNil(fixture.planner.defaultBlockDriver())
        let none = await errorMessage {
            _ = try await fixture.planner.createForImage(name: "img", options: [:], recordedSize: 1 << 30,
                                                         what: "backup b1") { _, _ throws(ConvoyError) in [:] }
        }
        XCTAssertTrue(none.contains("backup b1 is a block backup") && none.contains("devicemapper"), none)
        let named = await errorMessage {
            _ = try await fixture.planner.createForImage(name: "img", options: ["driver": "vfs"], recordedSize: 0,
                                                         what: "backup b1") { _, _ throws(ConvoyError) in [:] }
        }
        XCTAssertTrue(named.contains("not vfs"), named)
        XCTAssertTrue(try fixture.store.volumes().isEmpty)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.root + "/vfs/img"))
    }
}
