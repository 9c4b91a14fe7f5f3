import Backupstore
import ConvoyCore
import Foundation

extension Replicator {
    /// Replicas kept in the destination: the newest, and the one before it while the newest is being made.
    static let replicasKept = 2

    /// One replica of volume `name`: its lease checked (taken by another host: fenced, and false returned to
    /// stop), a snapshot, a backup of it to the destination, the lease renewed with it, and the replicas before
    /// the last two (snapshots here, backups there) deleted. A failure is recorded for `status` and retried at
    /// the next interval.
    func replicate(_ name: String) async -> Bool {
        guard let entry = entry(name), entry.fencedBy == nil, let services = connected() else { return false }
        let options = entry.options
        do throws(ConvoyError) {
            let repository = try await repository(options)
            if let held = try await ReplicaLease.read(name, in: repository), held.host != hostID {
                fence(name, options: options, by: held.host)
                return false
            }
            let snapshot = ObjectName.generate(prefix: "replica")
            // The replica holds the data as of its snapshot, not of its backup's end: its age (the RPO a failover
            // would give) counts from here.
            let taken = Date()
            let snapshotJob = try await services.snapshots.createSnapshot(volume: name, snapshot: snapshot)
            _ = try await ended(snapshotJob, services.jobs)
            let backupJob = try await services.backups.createBackup(snapshot: snapshot,
                                                                     destination: options.destination)
            let url = try await ended(backupJob, services.jobs)["URL"] ?? ""
            let now = Date()
            try await ReplicaLease(volume: name, host: hostID,
                                   expiresAt: now.timeIntervalSince1970 + options.leaseSeconds,
                                   lastBackup: url, lastBackupAt: taken.timeIntervalSince1970).write(to: repository)
            metrics?.lease("replica", takeover: false)
            var (oldSnapshots, oldBackups): ([String], [String]) = ([], [])
            record(name) { tracked in
                tracked.lastBackup = url
                tracked.lastBackupAt = taken
                tracked.lastError = nil
                tracked.snapshots.append(snapshot)
                tracked.backups.append(url)
                oldSnapshots = Array(tracked.snapshots.dropLast(1))
                tracked.snapshots = Array(tracked.snapshots.suffix(1))
                oldBackups = Array(tracked.backups.dropLast(Self.replicasKept))
                tracked.backups = Array(tracked.backups.suffix(Self.replicasKept))
            }
            for old in oldSnapshots { try? await services.catalog.delete(old) }
            for old in oldBackups { _ = try? await services.backups.deleteBackup(old) }
        } catch {
            logger.error("replica failed; retried at the next interval",
                         metadata: ["volume": "\(name)", "error": "\(error.message)"])
            record(name) { $0.lastError = "\(Date().formatted(.iso8601)): \(error.message)" }
        }
        return true
    }

    /// The result of a job once it ended; its error when it failed.
    private func ended(_ job: ClientAPI.Job, _ jobs: JobManager) async throws(ConvoyError) -> [String: String] {
        guard let done = await jobs.waitForEnd(job.id, upTo: .seconds(24 * 3600)) else {
            throw ConvoyError(.internalFailure, "job \(job.id) did not end")
        }
        guard done.state == .succeeded else {
            throw ConvoyError(.driverFailure, "\(job.kind) failed: \(done.error ?? "unknown error")")
        }
        return done.result ?? [:]
    }
}
