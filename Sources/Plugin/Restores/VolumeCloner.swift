import Backupstore
import ConvoyCore

/// Clones: a new volume holding what another holds at one moment. The moment is a snapshot of the source made
/// the usual way (a file snapshot into the local store, or the driver's thin snapshot), so a clone of a busy
/// volume is as consistent as its snapshot; the new volume is filled from it (files restored from the local
/// store, the thin snapshot's mapped blocks copied onto a new thin volume, or, for a driver whose backups are
/// its own, the snapshot made a backup and the volume created from it, as EBS makes volumes only from completed
/// snapshots) and the snapshot is deleted.
/// The source is held against deletion meanwhile. A crash part way leaves the snapshot (named `clone-…`,
/// listed by `convoy snapshot list`, deletable) and never a half-filled volume (restores are made whole or not
/// at all).
public struct VolumeCloner: Sendable {
    let volumes: VolumeService
    let snapshots: SnapshotService
    let catalog: SnapshotCatalog
    let planner: RestorePlanner
    let jobs: JobManager

    public init(volumes: VolumeService, snapshots: SnapshotService, catalog: SnapshotCatalog,
                planner: RestorePlanner, jobs: JobManager) {
        self.volumes = volumes
        self.snapshots = snapshots
        self.catalog = catalog
        self.planner = planner
        self.jobs = jobs
    }

    /// Starts the clone of volume `source` into new volume `name` as a job. `options` are the new volume's
    /// create options; without a driver, the source's driver. The size is the source's unless a larger one is
    /// given (a clone never holds less than its source).
    public func clone(_ source: String, into name: String,
                      options: [String: String]) async throws(ConvoyError) -> ClientAPI.Job {
        let record = try volumes.get(source)
        try ObjectName.validate(name)
        var options = options
        if options["driver"] == nil { options["driver"] = record.driver }
        if let asked = options["size"].flatMap(UInt64.init), asked < record.size {
            throw ConvoyError(.invalidArgument, "a clone of \(source) needs at least its \(record.size) bytes, "
                + "not \(asked)")
        }
        let driver = volumes.drivers[record.driver]
        if driver is any SnapshotDriver && !(driver is any BlockImageDriver || driver is any NativeBackupDriver) {
            throw ConvoyError(.invalidArgument, "volumes of driver \(record.driver) are not cloned by convoy: back "
                + "the volume up and create the new volume from that backup")
        }
        try await volumes.beginJob(on: source)
        let work: JobManager.Work = { [self, options] progress throws(ConvoyError) in
            defer { Task { await volumes.endJob(on: source) } }
            let snapshotName = ObjectName.generate(prefix: "clone")
            let cut = try await snapshots.createSnapshot(volume: source, snapshot: snapshotName)
            _ = try await jobs.wait(for: cut.id)
            do throws(ConvoyError) {
                let snapshot = try catalog.snapshot(snapshotName)
                let made = try await fill(name, from: snapshot, source: record, options: options,
                                          progress: progress)
                try? await catalog.delete(snapshotName)
                return ["Volume": made.name]
            } catch {
                try? await catalog.delete(snapshotName)
                throw error
            }
        }
        do {
            return try await jobs.start(kind: "clone", target: "\(source) → \(name)", work: work)
        } catch {
            await volumes.endJob(on: source)
            throw error
        }
    }

    private func fill(_ name: String, from snapshot: ClientAPI.Snapshot, source: VolumeRecord,
                      options: [String: String], progress: @escaping ProgressSink) async throws(ConvoyError)
        -> VolumeRecord {
        let keeper = try catalog.keepingDriver(of: snapshot, as: (any SnapshotDriver).self)
        if let driver = keeper as? any BlockImageDriver {
            let info = snapshot.driverInfo ?? [:]
            let changes = try await driver.changedBlocks(of: info, since: nil)
            let from = try await driver.activateSnapshot(snapshot.name, info: info)
            do throws(ConvoyError) {
                let made = try await planner.createForImage(name: name, options: options, recordedSize: source.size,
                                                            what: "the clone of \(source.name)") {
                    target, volume throws(ConvoyError) in
                    let device = try await target.deviceForImage(volume)
                    try await BlockCopy(blockSize: driver.blockSize, blocks: changes.read)
                        .copy(from: from, to: device, progress: progress)
                    var info = [VolumeRecord.madeFromKey: VolumeRecord.cloneOrigin(source.name)]
                    info["FS"] = source.driverInfo["FS"]
                    return info
                }
                try? await driver.deactivateSnapshot(snapshot.name)
                return made
            } catch {
                try? await driver.deactivateSnapshot(snapshot.name)
                throw error
            }
        }
        if let native = keeper as? any NativeBackupDriver {
            return try await fillNatively(name, from: snapshot, source: source.name, driver: native, options: options)
        }
        let manifest = try await catalog.local.manifest(volume: source.name, backup: snapshot.name)
        let local = catalog.local
        return try await planner.createForFiles(name: name, options: options, recordedSize: source.size) {
            directory, _, _ throws(ConvoyError) in
            try await FileRestorer(repository: local).restore(manifest, into: directory, progress: progress)
            return [VolumeRecord.madeFromKey: VolumeRecord.cloneOrigin(source.name)]
        }
    }

    /// The snapshot made a backup of the driver's own (it waits until it is complete), the volume created from
    /// it, the backup deleted.
    private func fillNatively(_ name: String, from snapshot: ClientAPI.Snapshot, source: String,
                              driver: any NativeBackupDriver,
                              options: [String: String]) async throws(ConvoyError) -> VolumeRecord {
        let backup = try await driver.createBackup(snapshot: snapshot.name, info: snapshot.driverInfo ?? [:],
                                                   destination: driver.backupScheme + "://")
        guard let url = backup["URL"] else {
            throw ConvoyError(.internalFailure, "driver \(driver.name) made a backup of snapshot \(snapshot.name) "
                + "without a URL")
        }
        do throws(ConvoyError) {
            _ = try await RestoreService.restoreNative(volumes: volumes, driver: driver, url: url, name: name,
                                                       options: options, origin: VolumeRecord.cloneOrigin(source))
            _ = try? await driver.deleteBackup(url)
            return try volumes.get(name)
        } catch {
            _ = try? await driver.deleteBackup(url)
            throw error
        }
    }
}
