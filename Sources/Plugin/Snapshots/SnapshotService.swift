import Backupstore
import Foundation
import ConvoyCore
import Logging
import Synchronization

/// Takes snapshots. A directory-backed volume's snapshot is a file backup into the daemon's local store, so the
/// snapshots of a volume share blocks and only changed files are read; a volume whose driver snapshots itself
/// (a thin snapshot) gets the driver's. Either way the work is a job, and the volume cannot be deleted meanwhile.
public struct SnapshotService: Sendable {
    let volumes: VolumeService
    let catalog: SnapshotCatalog
    let jobs: JobManager
    /// Lazily restored volumes are read through their overlay until they are hydrated.
    let lazy: LazyVolumes?
    /// Snapshot names being created, so two requests for one name cannot both pass the uniqueness check.
    let creating = NameReservations()

    public init(volumes: VolumeService, catalog: SnapshotCatalog, jobs: JobManager, lazy: LazyVolumes?) {
        self.volumes = volumes
        self.catalog = catalog
        self.jobs = jobs
        self.lazy = lazy
    }

    /// `takenAt`: the time the snapshot is stamped with (its backups' creation time); now when nil. A scheduled
    /// backup passes its scheduler's clock.
    public func createSnapshot(volume name: String, snapshot requested: String?,
                               takenAt: Date? = nil) async throws(ConvoyError) -> ClientAPI.Job {
        let record = try volumes.get(name)
        let snapshotName = try requested.map { name throws(ConvoyError) in
            try ObjectName.validate(name, kind: "snapshot")
        } ?? ObjectName.generate(prefix: "snapshot")
        guard creating.reserve(snapshotName) else {
            throw .conflict("a snapshot named \(snapshotName) is being created; choose another name")
        }
        var began = false
        do throws(ConvoyError) {
            guard try catalog.store.snapshot(named: snapshotName) == nil else {
                throw ConvoyError.conflict(
                    "a snapshot named \(snapshotName) exists already; snapshot names are unique per daemon")
            }
            let work: JobManager.Work
            if let driver = volumes.drivers[record.driver] as? any SnapshotDriver {
                work = driverSnapshot(record, name: snapshotName, driver: driver, takenAt: takenAt ?? Date())
            } else {
                work = try await fileSnapshot(record, name: snapshotName, takenAt: takenAt)
            }
            try await volumes.beginJob(on: name)
            began = true
            let (volumes, creating) = (self.volumes, self.creating)
            return try await jobs.start(kind: "snapshot create", target: "\(name)/\(snapshotName)") {
                progress throws(ConvoyError) in
                defer {
                    creating.release(snapshotName)
                    Task { await volumes.endJob(on: name) }
                }
                return try await work(progress)
            }
        } catch {
            creating.release(snapshotName)
            if began { await volumes.endJob(on: name) }
            throw error
        }
    }

    /// A file backup of the volume's directory (its overlay while it is lazy), incremental against the volume's
    /// last snapshot.
    private func fileSnapshot(_ record: VolumeRecord, name snapshotName: String,
                              takenAt: Date?) async throws(ConvoyError) -> JobManager.Work {
        let name = record.name
        let directory = try await readableDirectory(of: record)
        let parentName = try catalog.store.snapshots(volume: name).last?.name
        let (local, store) = (catalog.local, catalog.store)
        return { progress throws(ConvoyError) in
            let parent = try await parentName.asyncMap { parent throws(ConvoyError) in
                try await local.manifest(volume: name, backup: parent)
            }
            let outcome = try await FileBackupWriter(repository: local).backup(.init(
                source: directory, volume: name, backupID: snapshotName, snapshot: snapshotName, parent: parent,
                volumeSize: record.size, createdAt: takenAt.map { VolumeService.timestamp($0) }), progress: progress)
            let manifest = outcome.manifest
            Failpoint.reach("snapshot-manifest-written")
            let skipped = SkippedReport(outcome, snapshot: snapshotName)
            try store.insertSnapshot(ClientAPI.Snapshot(
                name: snapshotName, volumeName: name, createdTime: manifest.createdAt, size: manifest.stats.bytes,
                files: manifest.stats.files, bytesRead: manifest.stats.bytesRead,
                newBytesStored: manifest.stats.newBytesStored, skipped: skipped?.lines))
            var result = ["Snapshot": snapshotName]
            result[SkippedReport.resultKey] = skipped?.summary
            return result
        }
    }

    /// The directory a file backup of the volume reads: its overlay while it is lazy, else the driver's.
    func readableDirectory(of record: VolumeRecord) async throws(ConvoyError) -> String {
        if let merged = await lazy?.readableDirectory(of: record.name) { return merged }
        let refusal = "volume \(record.name) uses driver \(record.driver), which has no snapshots in this build"
        guard let driver = volumes.drivers[record.driver] else { throw ConvoyError.invalid(refusal) }
        return try driver.directory(of: record.driverVolume, refusal: refusal)
    }

    /// A snapshot the driver keeps itself (a thin snapshot): instant, but a job like the others for one CLI path.
    private func driverSnapshot(_ record: VolumeRecord, name snapshotName: String,
                                driver: any SnapshotDriver, takenAt: Date) -> JobManager.Work {
        let store = catalog.store
        return { _ throws(ConvoyError) in
            var info = try await driver.createSnapshot(snapshotName, of: record.driverVolume)
            info[ClientAPI.Snapshot.driverKey] = driver.name
            do throws(ConvoyError) {
                try store.insertSnapshot(ClientAPI.Snapshot(
                    name: snapshotName, volumeName: record.name, createdTime: VolumeService.timestamp(takenAt),
                    size: record.size, files: 0, bytesRead: 0, newBytesStored: 0, driverInfo: info))
            } catch {
                try? await driver.deleteSnapshot(snapshotName, info: info, of: record.driverVolume)
                throw error
            }
            return ["Snapshot": snapshotName]
        }
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws(ConvoyError) -> T) async throws(ConvoyError) -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}

/// Names reserved while an operation that creates them runs.
final class NameReservations: Sendable {
    private let names = Mutex<Set<String>>([])

    func reserve(_ name: String) -> Bool { names.withLock { $0.insert(name).inserted } }
    func release(_ name: String) { _ = names.withLock { $0.remove(name) } }
}
