import Backupstore
import ConvoyCore
import Foundation

/// One run of a policy: a snapshot stamped with the scheduler's time, its backup to the destination, the
/// previous run's snapshot deleted (the new one is the base of the next incremental backup), then the volume's
/// backups there forgotten by the policy's rules and the store collected. A failed backup leaves no snapshot
/// behind; a failure after the backup was written still counts the backup as made, and says what failed. The
/// snapshots are named `scheduled-<16 hex>`, so a run that succeeds also deletes what a run killed part way left.
extension BackupScheduler {
    static let snapshotPrefix = "scheduled"

    nonisolated func run(_ record: PolicyRecord, at now: Date, parts: Parts,
                         progress: @escaping ProgressSink) async throws(ConvoyError) -> [String: String] {
        let (policy, jobs) = (record.policy, parts.jobs)
        let volume = policy.volume
        var result: [String: String] = [:]
        do throws(ConvoyError) {
            progress(WorkProgress(phase: "snapshot", itemsTotal: 4))
            let snapshotJob = try await parts.snapshots.createSnapshot(
                volume: volume, snapshot: ObjectName.generate(prefix: Self.snapshotPrefix), takenAt: now)
            guard let snapshot = try await jobs.wait(for: snapshotJob.id).result?["Snapshot"] else {
                throw ConvoyError(.internalFailure, "snapshot job \(snapshotJob.id) named no snapshot")
            }
            progress(WorkProgress(phase: "backup", itemsDone: 1, itemsTotal: 4))
            let url: String
            do throws(ConvoyError) {
                let backupJob = try await parts.backups.createBackup(snapshot: snapshot,
                                                                        destination: policy.destination)
                guard let written = try await jobs.wait(for: backupJob.id).result?["URL"] else {
                    throw ConvoyError(.internalFailure, "backup job \(backupJob.id) named no backup")
                }
                url = written
            } catch {
                try? await parts.catalog.delete(snapshot)
                throw error
            }
            // The previous run's snapshot, and any a killed run left: the new one is the next run's base.
            for old in try parts.catalog.snapshots(volume: volume)
            where old.name != snapshot && old.name.hasPrefix(Self.snapshotPrefix + "-") {
                try await parts.catalog.delete(old.name)
            }
            try store.recordPolicyResult(of: volume, success: (now, url), error: nil)
            result = ["Snapshot": snapshot, "URL": url]
        } catch {
            try? store.recordPolicyResult(of: volume, success: nil, error: error.message)
            throw error
        }
        try await forget(record, result: &result, parts: parts, progress: progress)
        try await verify(record, at: now, result: &result, parts: parts, progress: progress)
        return result
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
