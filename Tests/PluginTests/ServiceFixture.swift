import Backupstore
import ConvoyCore
import Drivers
import Foundation
import Logging
@testable import Plugin
import XCTest

/// The daemon's services wired as the daemon wires them, over the real vfs driver and a state database in a
/// temporary root, without sockets: what the snapshot, backup and restore services do can be checked alone.
struct ServiceFixture {
    let root: String
    let store: StateStore
    let volumes: VolumeService
    let catalog: SnapshotCatalog
    let snapshots: SnapshotService
    let backups: BackupService
    let restores: RestoreService
    let planner: RestorePlanner
    let jobs: JobManager
    let stores: StoreFactory

    /// `backupDestinations` and `allowAnyBackupDestination` as the daemon's flags: without them, the services
    /// read only the destinations they have written a backup to, as a daemon started without flags does.
    init(_ test: XCTestCase, drivers extra: [any VolumeDriver] = [], backupDestinations: [String] = [],
         allowAnyBackupDestination: Bool = false, hostID: String? = nil) throws {
        root = NSTemporaryDirectory() + "convoy-services-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let root = self.root
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: root) }
        let logger = Logger(label: "test")
        store = try StateStore(path: root + "/convoy.db")
        let drivers: [any VolumeDriver] = [try VFSDriver(context: DriverContext(root: root, options: [:]))] + extra
        catalog = try SnapshotCatalog(store: store, root: root, drivers: drivers, logger: logger)
        volumes = VolumeService(store: store, drivers: drivers, ignoreDockerDelete: false, hooks: [catalog],
                                logger: logger)
        jobs = JobManager(store: store, logger: logger)
        planner = RestorePlanner(volumes: volumes)
        snapshots = SnapshotService(volumes: volumes, catalog: catalog, jobs: jobs, lazy: nil)
        stores = StoreFactory(destinations: try BackupDestinations(
            listed: backupDestinations, allowsAny: allowAnyBackupDestination, store: store), hostID: hostID)
        backups = BackupService(catalog: catalog, jobs: jobs, stores: stores)
        restores = RestoreService(planner: planner, jobs: jobs, stores: stores, root: root)
    }

    /// The job once it has ended; fails the test if it did not succeed.
    func ended(_ job: ClientAPI.Job, file: StaticString = #filePath,
               line: UInt = #line) async throws -> ClientAPI.Job {
        var current = job
        for _ in 0..<120 where current.state == .running {
            let next = await jobs.waitForEnd(job.id, upTo: .seconds(1))
            current = try XCTUnwrap(next)
        }
        XCTAssertEqual(current.state, .succeeded, current.error ?? "", file: file, line: line)
        return current
    }

    func directory(of volume: String) throws -> String {
        try XCTUnwrap(try volumes.get(volume).driverInfo["Path"])
    }
}

/// The kind of the error `body` throws, nil when it throws none.
func errorKind(_ body: () async throws -> Void) async -> ConvoyError.Kind? {
    do { try await body() } catch { return (error as? ConvoyError)?.kind ?? .internalFailure }
    return nil
}

/// The message of the error `body` throws, "" when it throws none.
func errorMessage(_ body: () async throws -> Void) async -> String {
    do { try await body() } catch { return (error as? ConvoyError)?.message ?? "\(error)" }
    return ""
}
