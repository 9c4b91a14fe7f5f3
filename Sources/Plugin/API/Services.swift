import ConvoyCore

/// The daemon's services, as the HTTP APIs see them: each route calls one of them, and none calls a route.
struct Services: Sendable {
    let volumes: VolumeService
    let snapshots: SnapshotService
    let catalog: SnapshotCatalog
    let backups: BackupService
    let restores: RestoreService
    let lazy: LazyRestore
    let browser: BackupBrowser
    let jobs: JobManager
    let replicator: Replicator
    let scheduler: BackupScheduler
    let metrics: DaemonMetrics

    /// A Create without a backup: a volume with replica options is placed first (taken over from the host that
    /// replicated it, restored lazily from its newest replica), then replicated from here.
    func createVolume(name: String?, options: [String: String]) async throws(ConvoyError) -> VolumeRecord {
        let driver = options["driver"] ?? volumes.defaultDriver
        guard let replica = try ReplicaOptions.parse(options, driver: driver) else {
            return try await volumes.create(name: name, options: options)
        }
        let name = try name.map { name throws(ConvoyError) in try ObjectName.validate(name) }
            ?? ObjectName.generate(prefix: "volume")
        if let existing = try? volumes.get(name), existing.state == .ready { return existing }
        let record: VolumeRecord
        if let newest = try await replicator.place(name, options: replica) {
            record = try await lazy.create(name: name, backup: newest, options: options)
        } else {
            record = try await volumes.create(name: name, options: options)
        }
        await replicator.track(name, options: replica)
        return record
    }

    /// The driver's status of a volume, with its replication's.
    func status(of record: VolumeRecord) async -> [String: String] {
        var status = await volumes.driverStatus(of: record)
        status.merge(await replicator.status(of: record.name)) { $1 }
        return status
    }
}
