import Backupstore
import ConvoyCore
import Foundation

/// One run of a policy: the backup, stamped with the scheduler's time, then the volume's backups there forgotten
/// by the policy's rules and the store collected, then the store checked when the policy asks. A file volume going
/// to a backup store is backed up straight from its directory (`backup create --volume`: data written once, no
/// snapshot kept on the host; its last backup there is the next run's base). Other volumes go through a snapshot,
/// backed up, and the previous run's snapshot deleted (the new one is the next incremental's base). A failed
/// backup leaves no snapshot behind; a failure after the backup was written still counts the backup as made, and
/// says what failed. Snapshots are named `scheduled-<16 hex>`, so a run that succeeds also deletes what a killed
/// run (or an earlier version, for a file volume) left.
extension BackupScheduler {
    static let snapshotPrefix = "scheduled"

    nonisolated func run(_ record: PolicyRecord, at now: Date, parts: Parts,
                         progress: @escaping ProgressSink) async throws(ConvoyError) -> [String: String] {
        let (policy, volume) = (record.policy, record.policy.volume)
        var result: [String: String] = [:]
        do throws(ConvoyError) {
            progress(WorkProgress(phase: "backup", itemsTotal: 4))
            let snapshot: String?
            let url: String
            if try parts.snapshots.backsUpDirectly(volume, to: policy.destination, backups: parts.backups) {
                snapshot = nil
                let job = try await parts.snapshots.backUpVolume(volume, to: policy.destination,
                                                                 backups: parts.backups, takenAt: now)
                url = try await Self.written(job, parts: parts)
            } else {
                (snapshot, url) = try await backUpThroughSnapshot(volume, policy: policy, at: now, parts: parts)
            }
            // The previous run's snapshot, and any a killed run left: the new one (if any) is the next run's base.
            for old in try parts.catalog.snapshots(volume: volume)
            where old.name != snapshot && old.name.hasPrefix(Self.snapshotPrefix + "-") {
                try await parts.catalog.delete(old.name)
            }
            try store.recordPolicyResult(of: volume, success: (now, url), error: nil)
            result = ["URL": url]
            result["Snapshot"] = snapshot
        } catch {
            try? store.recordPolicyResult(of: volume, success: nil, error: error.message)
            throw error
        }
        try await forget(record, result: &result, parts: parts, progress: progress)
        try await verify(record, at: now, result: &result, parts: parts, progress: progress)
        return result
    }

    /// A snapshot stamped `now`, backed up; the snapshot is deleted again when its backup fails.
    private nonisolated func backUpThroughSnapshot(_ volume: String, policy: ClientAPI.BackupPolicy, at now: Date,
                                                   parts: Parts) async throws(ConvoyError) -> (String, String) {
        let snapshotJob = try await parts.snapshots.createSnapshot(
            volume: volume, snapshot: ObjectName.generate(prefix: Self.snapshotPrefix), takenAt: now)
        guard let snapshot = try await parts.jobs.wait(for: snapshotJob.id).result?["Snapshot"] else {
            throw ConvoyError(.internalFailure, "snapshot job \(snapshotJob.id) named no snapshot")
        }
        do throws(ConvoyError) {
            let backupJob = try await parts.backups.createBackup(snapshot: snapshot, destination: policy.destination)
            return (snapshot, try await Self.written(backupJob, parts: parts))
        } catch {
            try? await parts.catalog.delete(snapshot)
            throw error
        }
    }

    /// The URL a backup job wrote, once it has ended.
    private nonisolated static func written(_ job: ClientAPI.Job, parts: Parts) async throws(ConvoyError) -> String {
        guard let url = try await parts.jobs.wait(for: job.id).result?["URL"] else {
            throw ConvoyError(.internalFailure, "backup job \(job.id) named no backup")
        }
        return url
    }

    /// The volume's backups at the destination forgotten by the policy's rules (none without rules).
    private nonisolated func forget(_ record: PolicyRecord, result: inout [String: String], parts: Parts,
                                    progress: @escaping ProgressSink) async throws(ConvoyError) {
        let (policy, volume) = (record.policy, record.policy.volume)
        guard !policy.keep.isEmpty else { return }
        progress(WorkProgress(phase: "forget", itemsDone: 2, itemsTotal: 4))
        do throws(ConvoyError) {
            let forgotten = try await parts.backups.forget(.init(
                destination: policy.destination, volumeName: volume, policy: policy.keep, dryRun: false))
            result["Kept"] = "\(forgotten.backups.filter(\.keep).count)"
            result["Forgotten"] = "\(forgotten.backups.filter { !$0.keep }.count)"
            for (key, value) in forgotten.collection ?? [:] { result[key] = value }
        } catch {
            let message = "backup \(result["URL"] ?? "") written; forgetting by the policy failed: \(error.message)"
            try? store.recordPolicyResult(of: volume, success: nil, error: message)
            throw ConvoyError(error.kind, message)
        }
    }

    /// The destination checked (`backup verify --all`) when the policy asks and its interval has passed; problems
    /// fail the run, with the first of them in its error.
    private nonisolated func verify(_ record: PolicyRecord, at now: Date, result: inout [String: String],
                                    parts: Parts, progress: @escaping ProgressSink) async throws(ConvoyError) {
        let (policy, volume) = (record.policy, record.policy.volume)
        guard let every = policy.verifyEverySeconds,
              now.timeIntervalSince(record.lastVerify ?? .distantPast) >= every else { return }
        progress(WorkProgress(phase: "verify", itemsDone: 3, itemsTotal: 4))
        let job = try await parts.backups.verifyStore(.init(destination: policy.destination,
                                                            readDataSubset: policy.verifySubset))
        let report = try await parts.jobs.wait(for: job.id).result ?? [:]
        try store.recordPolicyVerify(of: volume, at: now)
        result["Verified"] = "\(report["Backups"] ?? "?") backups, \(report["BlocksRead"] ?? "?") blocks read"
        let problems = Int(report["Problems"] ?? "0") ?? 0
        guard problems == 0 else {
            let message = "backup \(result["URL"] ?? "") written; the check of \(policy.destination) found "
                + "\(problems) problem(s), the first: \(report["Problem1"] ?? "?") (job \(job.id) lists them)"
            try? store.recordPolicyResult(of: volume, success: nil, error: message)
            throw ConvoyError(.driverFailure, message)
        }
    }
}
