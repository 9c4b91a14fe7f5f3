import Backupstore
import ConvoyCore
import Logging

/// The snapshots the daemon keeps: file snapshots in its local store (`<root>/snapshots`, a backup store whose
/// snapshots of one volume share blocks), driver snapshots in their driver (thin snapshots), and a row for each
/// in the state database. Looks them up and deletes them; as a volume hook, deletes a volume's snapshots with it.
public struct SnapshotCatalog: VolumeLifecycleHooks {
    let store: StateStore
    /// The local store of file snapshots.
    let local: BackupRepository
    let drivers: [String: any VolumeDriver]
    let logger: Logger

    public init(store: StateStore, root: String, drivers: [any VolumeDriver], logger: Logger) throws(ConvoyError) {
        self.store = store
        self.local = BackupRepository(store: try FileObjectStore(root: root + "/snapshots"))
        self.drivers = Dictionary(drivers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.logger = logger
    }

    public func snapshot(_ name: String) throws(ConvoyError) -> ClientAPI.Snapshot {
        try ObjectName.validate(name, kind: "snapshot")
        guard let snapshot = try store.snapshot(named: name) else {
            throw .notFound("no snapshot named '\(name)'; `convoy snapshot list` shows them")
        }
        return snapshot
    }

    public func snapshots(volume: String?) throws(ConvoyError) -> [ClientAPI.Snapshot] {
        if let volume { try ObjectName.validate(volume) }
        return try store.snapshots(volume: volume)
    }

    /// The running driver that keeps `snapshot` itself (nil for a file snapshot); refused when it does not run.
    func keepingDriver<Driver>(of snapshot: ClientAPI.Snapshot, as type: Driver.Type) throws(ConvoyError) -> Driver? {
        guard let name = snapshot.keepingDriver else { return nil }
        guard let driver = drivers[name] as? Driver else {
            throw ConvoyError(.unavailable, "snapshot \(snapshot.name) belongs to driver \(name.isEmpty ? "?" : name), "
                + "which this daemon does not run")
        }
        return driver
    }

    /// Deletes a snapshot; for a file snapshot, collects the blocks only it used.
    public func delete(_ name: String) async throws(ConvoyError) {
        let snapshot = try snapshot(name)
        if let driver = try keepingDriver(of: snapshot, as: (any SnapshotDriver).self) {
            try await deleteDriverSnapshot(snapshot, driver: driver)
            return
        }
        // The row goes first: a crash between leaves a manifest without a row, which the next start removes
        // (`sweepOrphans`), never a row naming a snapshot that is gone.
        try store.deleteSnapshot(name)
        Failpoint.reach("snapshot-row-deleted")
        try await local.deleteManifest(volume: snapshot.volumeName, backup: name)
        let result = try await GarbageCollector(repository: local).collect()
        logger.info("deleted snapshot", metadata: ["snapshot": "\(name)", "blocksFreed": "\(result.blocksDeleted)",
                                                   "packsRewritten": "\(result.packsRewritten)"])
        for damaged in result.packsWithDamagedIndex {
            logger.warning("snapshot store: a pack's index cannot be read; the pack is kept",
                           metadata: ["pack": "\(damaged)"])
        }
    }

    private func deleteDriverSnapshot(_ snapshot: ClientAPI.Snapshot,
                                      driver: any SnapshotDriver) async throws(ConvoyError) {
        let volume = (try? store.volume(named: snapshot.volumeName))?.driverVolume
            ?? DriverVolume(name: snapshot.volumeName, size: nil)
        try await driver.deleteSnapshot(snapshot.name, info: snapshot.driverInfo ?? [:], of: volume)
        try store.deleteSnapshot(snapshot.name)
        logger.info("deleted snapshot", metadata: ["snapshot": "\(snapshot.name)", "driver": "\(driver.name)"])
    }

    /// Deletes every snapshot of a volume (when the volume itself is deleted).
    public func deleteAll(ofVolume volume: String) async throws(ConvoyError) {
        var fileSnapshots: [ClientAPI.Snapshot] = []
        for snapshot in try store.snapshots(volume: volume) {
            if let driver = try keepingDriver(of: snapshot, as: (any SnapshotDriver).self) {
                try await deleteDriverSnapshot(snapshot, driver: driver)
            } else {
                fileSnapshots.append(snapshot)
            }
        }
        // Most volumes have none: no collection (a walk of every manifest and block) for them.
        guard !fileSnapshots.isEmpty else { return }
        for snapshot in fileSnapshots {
            try store.deleteSnapshot(snapshot.name)
            try await local.deleteManifest(volume: volume, backup: snapshot.name)
        }
        _ = try await GarbageCollector(repository: local).collect()
    }

    /// At start: what a crash left between two writes. Rows of snapshots whose volume is gone (the volume's row
    /// went, its snapshots' did not) are deleted with their snapshots; file snapshots in the local store without
    /// a row (written, or being deleted, when the daemon stopped) are deleted; their blocks are collected.
    /// Returns one line per repair.
    public func sweepOrphans(existingVolumes: Set<String>) async -> [String] {
        var repairs: [String] = []
        let rows = (try? store.snapshots(volume: nil)) ?? []
        for volume in Set(rows.map(\.volumeName)).subtracting(existingVolumes).sorted() {
            do throws(ConvoyError) {
                try await deleteAll(ofVolume: volume)
                repairs.append("snapshots of volume \(volume), which no longer exists: deleted")
            } catch {
                repairs.append("snapshots of volume \(volume), which no longer exists: cannot delete them: "
                    + error.message)
            }
        }
        let recorded = Set(((try? store.snapshots(volume: nil)) ?? []).map(\.name))
        var removed = 0
        for (volume, id) in (try? await local.backups()) ?? [] where !recorded.contains(id) {
            guard (try? await local.deleteManifest(volume: volume, backup: id)) != nil else { continue }
            repairs.append("snapshot \(id) of volume \(volume) in the local store had no record: deleted")
            removed += 1
        }
        if removed > 0, let result = try? await GarbageCollector(repository: local).collect() {
            repairs.append("local snapshot store: \(result.blocksDeleted) blocks of those snapshots collected")
        }
        return repairs
    }

    // MARK: VolumeLifecycleHooks

    public func didDelete(_ name: String) async {
        do throws(ConvoyError) { try await deleteAll(ofVolume: name) } catch {
            logger.warning("cannot delete the snapshots of deleted volume \(name): \(error.message)")
        }
    }
}
