import ConvoyCore
@testable import Plugin
import XCTest

final class StateStoreTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "convoy-state-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func record(_ name: String) -> VolumeRecord {
        VolumeRecord(name: name, driver: "vfs", size: 5 << 30, createdAt: "2026-01-01T00:00:00Z", state: .ready,
                     options: ["fs": "ext4"], driverInfo: ["Path": "/x/\(name)"])
    }

    func testVolumesAndReferencesSurviveReopening() throws {
        do {
            let store = try StateStore(path: directory + "/convoy.db")
            try store.insert(record("v1"))
            try store.insert(record("v2"))
            XCTAssertEqual(try store.addReference("a", to: "v1", mountpoint: "/m/v1"), 1)
            XCTAssertEqual(try store.addReference("b", to: "v1", mountpoint: "/m/v1"), 2)
            XCTAssertEqual(try store.addReference("a", to: "v1", mountpoint: "/m/v1"), 2,
                           "a repeated ID is one reference")
            try store.setConfig("k", "v")
        }
        let store = try StateStore(path: directory + "/convoy.db")
        let v1 = try XCTUnwrap(try store.volume(named: "v1"))
        XCTAssertEqual(v1.references, ["a", "b"])
        XCTAssertEqual(v1.mountpoint, "/m/v1")
        XCTAssertEqual(v1.size, 5 << 30)
        XCTAssertEqual(v1.options, ["fs": "ext4"])
        XCTAssertEqual(v1.driverInfo, ["Path": "/x/v1"])
        XCTAssertEqual(try store.volumes().map(\.name), ["v1", "v2"])
        XCTAssertEqual(try store.config("k"), "v")

        let removed = try store.removeReference("a", from: "v1")
        XCTAssertTrue(removed.existed)
        XCTAssertEqual(removed.remaining, 1)
        let unknown = try store.removeReference("zzz", from: "v1")
        XCTAssertFalse(unknown.existed)
        XCTAssertEqual(unknown.remaining, 1)
    }

    func testDeletingAVolumeDropsItsReferencesAndDuplicatesConflict() throws {
        let store = try StateStore(path: directory + "/convoy.db")
        try store.insert(record("v1"))
        XCTAssertThrowsError(try store.insert(record("v1"))) { error in
            XCTAssertEqual((error as? ConvoyError)?.kind, .conflict)
        }
        try store.addReference("a", to: "v1", mountpoint: "/m")
        try store.delete("v1")
        try store.insert(record("v1"))
        XCTAssertEqual(try store.volume(named: "v1")?.references, [])
    }

    func testStateTransitions() throws {
        let store = try StateStore(path: directory + "/convoy.db")
        var creating = record("v1")
        creating.state = .creating
        try store.insert(creating)
        try store.update("v1", state: .ready, driverInfo: ["Path": "/new"])
        let ready = try XCTUnwrap(try store.volume(named: "v1"))
        XCTAssertEqual(ready.state, .ready)
        XCTAssertEqual(ready.driverInfo, ["Path": "/new"])
    }
}
