import Backupstore
import ConvoyCore
import Foundation
import Logging

/// Replicated local volumes (issue 19): the owning host backs each one up, incrementally, to its `replica`
/// destination every interval and renews its lease there (ReplicaLease). A host that finds its lease taken by
/// another host is fenced: it replicates no more and refuses to mount the volume, whose newest data is now the
/// other host's. As a lifecycle hook it only answers from its own state; it reaches the snapshot and backup
/// services (which call VolumeService) from its replication tasks, never from a hook.
public actor Replicator: VolumeLifecycleHooks {
    struct Tracked {
        var options: ReplicaOptions
        var task: Task<Void, Never>?
        var lastBackup: String?
        var lastBackupAt: Date?
        var lastError: String?
        /// The host that took the volume over, when this host is fenced from it.
        var fencedBy: String?
        /// The local snapshots of the last replicas (the newest is the next one's parent) and their backups.
        var snapshots: [String] = []
        var backups: [String] = []
    }

    struct Services: Sendable {
        let snapshots: SnapshotService
        let backups: BackupService
        let catalog: SnapshotCatalog
        let jobs: JobManager
    }

    let hostID: String
    let stores: StoreFactory
    let logger: Logger
    private var services: Services?
    private var tracked: [String: Tracked] = [:]

    let metrics: DaemonMetrics?

    public init(hostID: String, stores: StoreFactory, logger: Logger, metrics: DaemonMetrics? = nil) {
        self.metrics = metrics
        self.hostID = hostID
        self.stores = stores
        self.logger = logger
    }

    /// The services replication runs through (made after VolumeService, which takes this as a hook).
    func connect(_ services: Services) {
        self.services = services
    }

    func repository(_ options: ReplicaOptions) async throws(ConvoyError) -> BackupRepository {
        let repository = try await stores.repository(try StoreLocation.parse(options.destination), for: .newBackup)
        // A replica's lease moves between hosts by being removed and written again.
        try repository.refuseIfAppendOnly()
        return repository
    }

    // MARK: Which host has the volume

    /// Before volume `name` is made here with replica options: `nil` to create it empty (no replica exists), else
    /// the newest replica to restore lazily. Takes the lease; refused while another host's lease is live, unless
    /// `takeover=force`.
    func place(_ name: String, options: ReplicaOptions) async throws(ConvoyError) -> String? {
        let repository = try await repository(options)
        let held = try await ReplicaLease.read(name, in: repository)
        if let held, held.host != hostID, held.isLive() {
            guard options.forceTakeover else {
                throw ConvoyError(.conflict, "volume \(name) is replicated by host \(held.host), whose lease runs "
                    + "until \(held.expiry); it can move here once that expires (retry then), or now with "
                    + "-o takeover=force, at the risk of both hosts writing it")
            }
            logger.warning("replicated volume taken over by force from a live host",
                           metadata: ["volume": "\(name)", "host": "\(hostID)", "from": "\(held.host)"])
        } else if let held, held.host != hostID {
            logger.info("replicated volume taken over after its lease expired",
                        metadata: ["volume": "\(name)", "host": "\(hostID)", "from": "\(held.host)",
                                   "expired": "\(held.expiry)"])
        }
        let lease = ReplicaLease(volume: name, host: hostID,
                                 expiresAt: Date().timeIntervalSince1970 + options.leaseSeconds,
                                 lastBackup: held?.lastBackup, lastBackupAt: held?.lastBackupAt)
        try await lease.write(to: repository)
        // Of two hosts taking an expired lease at once, the one whose write stayed has it.
        try? await Task.sleep(for: .milliseconds(200))
        if let now = try await ReplicaLease.read(name, in: repository), now.host != hostID {
            throw ConvoyError(.conflict, "host \(now.host) took over volume \(name) at the same moment; retry")
        }
        metrics?.lease("replica", takeover: held.map { $0.host != hostID } ?? false)
        return held?.lastBackup
    }

    /// Starts replicating volume `name`, which this host owns.
    func track(_ name: String, options: ReplicaOptions) {
        var entry = tracked[name] ?? Tracked(options: options)
        entry.options = options
        entry.fencedBy = nil
        entry.task?.cancel()
        entry.task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: options.interval)
                guard !Task.isCancelled, let self else { return }
                guard await self.replicate(name) else { return }
            }
        }
        tracked[name] = entry
    }

    /// At start: replicates on the volumes this host still owns; fences those another host took over.
    func resumeAll(_ records: [VolumeRecord]) async -> [String] {
        var repairs: [String] = []
        for record in records {
            guard let options = try? ReplicaOptions.parse(record.options, driver: record.driver) else { continue }
            do {
                let held = try await ReplicaLease.read(record.name, in: try repository(options))
                if let held, held.host != hostID {
                    fence(record.name, options: options, by: held.host)
                    repairs.append("volume \(record.name): host \(held.host) took it over (its replicas are the "
                        + "newest); fenced here: not mounted nor replicated (delete it here when done with it)")
                    continue
                }
            } catch {
                repairs.append("volume \(record.name): its replica lease cannot be read (\(error.message)); "
                    + "replicating on, the lease is checked at each replica")
            }
            track(record.name, options: options)
        }
        return repairs
    }

    func fence(_ name: String, options: ReplicaOptions, by owner: String) {
        var entry = tracked[name] ?? Tracked(options: options)
        entry.task?.cancel()
        entry.task = nil
        entry.fencedBy = owner
        tracked[name] = entry
        logger.warning("fenced: another host owns the replicated volume now",
                       metadata: ["volume": "\(name)", "host": "\(hostID)", "owner": "\(owner)"])
    }

    // MARK: Hooks

    public func mountpoint(for record: VolumeRecord) async throws(ConvoyError) -> String? {
        if let owner = tracked[record.name]?.fencedBy {
            throw ConvoyError(.conflict, "volume \(record.name) is fenced on this host: host \(owner) took it over "
                + "and its data there is newer; use it there, or delete it here (`convoy delete \(record.name)`)")
        }
        return nil
    }

    public func didDelete(_ name: String) async {
        guard let entry = tracked.removeValue(forKey: name) else { return }
        entry.task?.cancel()
        // The lease goes with the volume only when it is this host's (a fenced copy leaves the owner's alone).
        if entry.fencedBy == nil, let repository = try? await repository(entry.options),
           (try? await ReplicaLease.read(name, in: repository))??.host == hostID {
            await ReplicaLease.remove(name, from: repository)
        }
    }

    /// For Docker's Get and `convoy inspect`: the newest replica and its age, a failure, or the fence.
    func status(of name: String) -> [String: String] {
        guard let entry = tracked[name] else { return [:] }
        var status = ["replicaDestination": entry.options.destination,
                      "replicaInterval": "\(entry.options.interval.components.seconds)s"]
        if let owner = entry.fencedBy { status["fenced"] = "host \(owner) took this volume over" }
        if let backup = entry.lastBackup { status["replica"] = backup }
        if let at = entry.lastBackupAt { status["replicaAgeSeconds"] = "\(Int(Date().timeIntervalSince(at)))" }
        if let error = entry.lastError { status["replicaError"] = error }
        return status
    }

    func record(_ name: String, _ change: (inout Tracked) -> Void) {
        guard var entry = tracked[name] else { return }
        change(&entry)
        tracked[name] = entry
    }

    func entry(_ name: String) -> Tracked? { tracked[name] }

    func connected() -> Services? { services }
}
