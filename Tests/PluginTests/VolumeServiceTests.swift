import ConvoyCore
import Logging
@testable import Plugin
import XCTest

final class VolumeServiceTests: XCTestCase {
    var root = ""
    var driver: CountingDriver!

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "convoy-service-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        driver = try CountingDriver(root: root)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    private func service(ignoreDockerDelete: Bool = false) throws -> VolumeService {
        VolumeService(store: try StateStore(path: root + "/convoy.db"), drivers: [driver],
                      ignoreDockerDelete: ignoreDockerDelete, logger: Logger(label: "test"))
    }

    private func kind(_ body: () async throws -> Void) async -> ConvoyError.Kind? {
        do { try await body() } catch { return (error as? ConvoyError)?.kind }
        return nil
    }

    func testFirstMountMountsLastUnmountUnmounts() async throws {
        let volumes = try service()
        _ = try await volumes.create(name: "v1", options: [:])
        let first = try await volumes.mount("v1", referenceID: "A")
        let second = try await volumes.mount("v1", referenceID: "B")
        XCTAssertEqual(first, second)
        XCTAssertEqual(driver.mounts, 1)
        XCTAssertEqual(try volumes.get("v1").references, ["A", "B"])

        try await volumes.unmount("v1", referenceID: "A")
        XCTAssertEqual(driver.unmounts, 0, "B still uses the volume")
        XCTAssertEqual(try volumes.get("v1").mountpoint, first)
        try await volumes.unmount("v1", referenceID: "unknown")
        XCTAssertEqual(driver.unmounts, 0, "an unknown ID is harmless")
        try await volumes.unmount("v1", referenceID: "B")
        XCTAssertEqual(driver.unmounts, 1)
        XCTAssertNil(try volumes.get("v1").mountpoint)
        XCTAssertEqual(try volumes.get("v1").references, [])
    }

    func testReferencesSurviveARestart() async throws {
        do {
            let volumes = try service()
            _ = try await volumes.create(name: "v1", options: [:])
            _ = try await volumes.mount("v1", referenceID: "A")
            _ = try await volumes.mount("v1", referenceID: "B")
        }
        // A new driver instance knows of no mounts, as after a reboot: reconciliation must remount.
        driver = try CountingDriver(root: root)
        let restarted = try service()
        let repairs = await restarted.reconcile()
        XCTAssertEqual(repairs.count, 1, "\(repairs)")
        XCTAssertTrue(repairs.first?.contains("mounted it") == true, "\(repairs)")
        XCTAssertEqual(driver.mounts, 1)
        XCTAssertEqual(try restarted.get("v1").references, ["A", "B"])
        try await restarted.unmount("v1", referenceID: "A")
        try await restarted.unmount("v1", referenceID: "B")
        XCTAssertEqual(driver.unmounts, 1)
    }

    func testRemoveRefusesAVolumeInUseThenDeletesData() async throws {
        let volumes = try service()
        let record = try await volumes.create(name: "v1", options: ["size": "1G"])
        XCTAssertEqual(record.size, 1 << 30)
        let path = try XCTUnwrap(record.driverInfo["Path"])
        _ = try await volumes.mount("v1", referenceID: "A")
        let refused = await kind { try await volumes.remove("v1", fromDocker: true) }
        XCTAssertEqual(refused, .inUse)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        try await volumes.unmount("v1", referenceID: "A")
        try await volumes.remove("v1", fromDocker: true)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        let gone = await kind { _ = try volumes.get("v1") }
        XCTAssertEqual(gone, .notFound)
    }

    func testIgnoreDockerDeleteKeepsTheVolume() async throws {
        let volumes = try service(ignoreDockerDelete: true)
        let record = try await volumes.create(name: "v1", options: [:])
        try await volumes.remove("v1", fromDocker: true)
        XCTAssertNoThrow(try volumes.get("v1"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: record.driverInfo["Path"] ?? "/nonexistent"))
        try await volumes.remove("v1", fromDocker: false)
        XCTAssertThrowsError(try volumes.get("v1"))
    }

    func testCreateIsIdempotentAndValidatesOptions() async throws {
        let volumes = try service()
        let first = try await volumes.create(name: "v1", options: ["size": "2G"])
        let again = try await volumes.create(name: "v1", options: [:])
        XCTAssertEqual(first, again)
        let badOption = await kind { _ = try await volumes.create(name: "v2", options: ["colour": "blue"]) }
        XCTAssertEqual(badOption, .invalidArgument)
        let badDriver = await kind { _ = try await volumes.create(name: "v2", options: ["driver": "nfs"]) }
        XCTAssertEqual(badDriver, .invalidArgument)
        let badSize = await kind { _ = try await volumes.create(name: "v2", options: ["size": "lots"]) }
        XCTAssertEqual(badSize, .invalidArgument)
        let badName = await kind { _ = try await volumes.create(name: "../v2", options: [:]) }
        XCTAssertEqual(badName, .invalidArgument)
        XCTAssertEqual(try volumes.list().map(\.name), ["v1"], "failed creates leave nothing behind")
        let generated = try await volumes.create(name: nil, options: ["fs": "xfs"])
        XCTAssertTrue(generated.name.hasPrefix("volume-"))
        XCTAssertEqual(generated.options, ["fs": "xfs"])
    }

    /// A create the driver refuses (its directory exists: a shared pool, a leftover) deletes nothing of what was there.
    func testARefusedCreateLeavesWhatStoodInItsWay() async throws {
        let volumes = try service()
        let existing = driver.inner.path + "/taken"
        try FileManager.default.createDirectory(atPath: existing, withIntermediateDirectories: true)
        try Data("someone else's".utf8).write(to: URL(fileURLWithPath: existing + "/data"))
        let refused = await kind { _ = try await volumes.create(name: "taken", options: [:]) }
        XCTAssertEqual(refused, .conflict)
        XCTAssertEqual(try String(contentsOfFile: existing + "/data", encoding: .utf8), "someone else's")
        XCTAssertEqual(try volumes.list().map(\.name), [])
    }

    func testConcurrentMountsAndUnmountsKeepAnExactCount() async throws {
        let volumes = try service()
        _ = try await volumes.create(name: "v1", options: [:])
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<50 {
                group.addTask { _ = try? await volumes.mount("v1", referenceID: "id-\(index)") }
            }
        }
        XCTAssertEqual(try volumes.get("v1").references.count, 50)
        XCTAssertEqual(driver.mounts, 1)
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<50 {
                group.addTask { try? await volumes.unmount("v1", referenceID: "id-\(index)") }
            }
        }
        XCTAssertEqual(try volumes.get("v1").references.count, 0)
        XCTAssertEqual(driver.unmounts, 1)
    }

    func testReconcileFinishesInterruptedWorkAndForgetsVanishedData() async throws {
        let store = try StateStore(path: root + "/convoy.db")
        // A create that died after the driver made the directory.
        try FileManager.default.createDirectory(atPath: root + "/vfs/half", withIntermediateDirectories: true)
        try store.insert(VolumeRecord(name: "half", driver: "vfs", size: 0, createdAt: "t", state: .creating,
                                      options: [:], driverInfo: [:]))
        // A delete that died before the driver removed the directory.
        try FileManager.default.createDirectory(atPath: root + "/vfs/dying", withIntermediateDirectories: true)
        try store.insert(VolumeRecord(name: "dying", driver: "vfs", size: 0, createdAt: "t", state: .deleting,
                                      options: [:], driverInfo: [:]))
        // A volume whose directory someone removed.
        try store.insert(VolumeRecord(name: "vanished", driver: "vfs", size: 0, createdAt: "t", state: .ready,
                                      options: [:], driverInfo: ["Path": root + "/vfs/vanished"]))
        try store.addReference("A", to: "vanished", mountpoint: "/m")
        // A healthy one.
        try FileManager.default.createDirectory(atPath: root + "/vfs/fine", withIntermediateDirectories: true)
        try store.insert(VolumeRecord(name: "fine", driver: "vfs", size: 0, createdAt: "t", state: .ready,
                                      options: [:], driverInfo: [:]))

        let volumes = try service()
        let repairs = await volumes.reconcile()
        XCTAssertEqual(repairs.count, 3, "\(repairs)")
        XCTAssertEqual(try volumes.list().map(\.name), ["fine"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/vfs/half"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/vfs/dying"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/vfs/fine"))
        let secondPass = await volumes.reconcile()
        XCTAssertEqual(secondPass, [], "a second pass finds nothing to repair")
    }
}
