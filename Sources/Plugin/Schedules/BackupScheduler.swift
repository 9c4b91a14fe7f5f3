import Backupstore
import ConvoyCore
import Foundation
import Logging

/// Backup policies (issue 21): per volume, a destination, an interval (optionally falling on a time of day) and
/// restic's retention rules. Stored in the state; every tick the scheduler starts the runs that are due, each a
/// job (`BackupScheduler+Run`: snapshot, backup, forget and collect), never two at once for one volume. After
/// downtime a policy runs once, not once per slot it missed. A volume deleted takes its policy with it.
public actor BackupScheduler {
    /// What a run uses, connected once the daemon's services exist (they hold this scheduler too).
    struct Parts: Sendable {
        let volumes: VolumeService
        let snapshots: SnapshotService
        let catalog: SnapshotCatalog
        let backups: BackupService
        let jobs: JobManager
    }

    let store: StateStore
    let clock: PolicyClock
    let logger: Logger
    private var parts: Parts?
    /// Volumes whose run is in progress.
    private var running: Set<String> = []
    private var loop: Task<Void, Never>?

    init(store: StateStore, clock: PolicyClock, logger: Logger) {
        self.store = store
        self.clock = clock
        self.logger = logger
    }

    func connect(_ parts: Parts) { self.parts = parts }

    private func connected() throws(ConvoyError) -> Parts {
        guard let parts else { throw ConvoyError(.internalFailure, "the backup scheduler was used before it started") }
        return parts
    }

    /// Starts looking for due runs, every tick of the clock, until `stop`.
    func start() {
        guard loop == nil else { return }
        let tick = clock.tick
        loop = Task { [weak self] in
            while !Task.isCancelled {
                await self?.startDueRuns()
                try? await Task.sleep(for: tick)
            }
        }
    }

    func stop() {
        loop?.cancel()
        loop = nil
    }

    // MARK: Policies

    /// Sets (or replaces) the volume's policy; a replaced one keeps its creation time and its runs' record.
    public func set(_ requested: ClientAPI.BackupPolicy) async throws(ConvoyError) -> ClientAPI.BackupPolicy {
        let policy = try validated(requested)
        _ = try connected().volumes.get(policy.volume)
        try await connected().backups.checkUnattended(policy.destination, forgets: !policy.keep.isEmpty)
        try store.setPolicy(policy, createdAt: clock.now())
        logger.info("backup policy set", metadata: ["volume": "\(policy.volume)", "every": "\(policy.everySeconds)s"])
        return try inspect(policy.volume)
    }

    /// The policy's settings checked (volume name, schedule, rules, destination) and nothing else kept. From
    /// Docker (`fromDocker`) the destination must be one this daemon already uses (`BackupDestinations`).
    public func validated(_ requested: ClientAPI.BackupPolicy,
                          fromDocker: Bool = false) throws(ConvoyError) -> ClientAPI.BackupPolicy {
        var policy = ClientAPI.BackupPolicy(volume: requested.volume, destination: requested.destination,
                                            everySeconds: requested.everySeconds, at: requested.at,
                                            keep: requested.keep)
        policy.verifyEverySeconds = requested.verifyEverySeconds
        policy.verifySubset = requested.verifySubset
        if let every = policy.verifyEverySeconds, every < BackupSchedule.shortest || !every.isFinite {
            throw .invalid("verify-every: a check of the destination runs at most once a minute (1m or more)")
        }
        if let subset = policy.verifySubset {
            guard policy.verifyEverySeconds != nil else { throw .invalid("verify-subset needs verify-every") }
            _ = try StoreVerifier.Subset.parse(subset)
        }
        try ObjectName.validate(policy.volume)
        // No rule at all: every backup is kept (no forget runs), where a forget by hand would refuse it.
        if !policy.keep.isEmpty { try policy.keep.validate() }
        _ = try BackupSchedule(every: policy.everySeconds, at: policy.at, createdAt: clock.now())
        do throws(ConvoyError) {
            policy.destination = try connected().backups.checkDestination(policy.destination, known: fromDocker)
        } catch {
            throw ConvoyError(error.kind, (fromDocker ? "backup-dest (a policy set from Docker may only name a "
                + "destination this daemon has written to or lists): " : "") + error.message)
        }
        return policy
    }

    public func inspect(_ volume: String) throws(ConvoyError) -> ClientAPI.BackupPolicy {
        guard let record = try store.policy(of: volume) else {
            throw .notFound("volume \(volume) has no backup policy; set one with `convoy backup policy set`")
        }
        return described(record)
    }

    public func list() throws(ConvoyError) -> [ClientAPI.BackupPolicy] {
        try store.policies().map(described)
    }

    public func delete(_ volume: String) throws(ConvoyError) {
        guard try store.policy(of: volume) != nil else {
            throw .notFound("volume \(volume) has no backup policy")
        }
        try store.deletePolicy(of: volume)
    }

    /// The policy with what its runs did and when it runs next.
    private func described(_ record: PolicyRecord) -> ClientAPI.BackupPolicy {
        var policy = record.policy
        let time = { (date: Date?) in date.map { VolumeService.timestamp($0) } }
        policy.createdTime = time(record.createdAt)
        policy.lastSuccess = time(record.lastSuccess)
        policy.lastAttempt = time(record.lastAttempt)
        policy.lastVerify = time(record.lastVerify)
        policy.running = running.contains(policy.volume)
        if let schedule = try? record.schedule {
            policy.nextRun = time(schedule.next(lastSuccess: record.lastSuccess, lastAttempt: record.lastAttempt,
                                                createdAt: record.createdAt, now: clock.now()).at)
        }
        return policy
    }

    // MARK: Runs

    /// Starts every run that is due and not already running.
    func startDueRuns() async {
        guard let parts else { return }
        let now = clock.now()
        let records: [PolicyRecord]
        do {
            records = try store.policies()
        } catch {
            logger.error("backup policies cannot be read: \(error.message)")
            return
        }
        for record in records where !running.contains(record.policy.volume) {
            let volume = record.policy.volume
            guard (try? parts.volumes.get(volume)) != nil else {
                try? store.deletePolicy(of: volume)
                logger.info("backup policy removed: its volume is gone", metadata: ["volume": "\(volume)"])
                continue
            }
            guard let schedule = try? record.schedule,
                  schedule.next(lastSuccess: record.lastSuccess, lastAttempt: record.lastAttempt,
                                createdAt: record.createdAt, now: now).due else { continue }
            await launch(record, at: now, parts: parts)
        }
    }

    private func launch(_ record: PolicyRecord, at now: Date, parts: Parts) async {
        let volume = record.policy.volume
        running.insert(volume)
        do throws(ConvoyError) {
            let job = try await parts.jobs.start(kind: "scheduled backup",
                                                 target: "\(volume) → \(record.policy.destination)") {
                progress throws(ConvoyError) in
                defer { Task { await self.ended(volume) } }
                return try await self.run(record, at: now, parts: parts, progress: progress)
            }
            try store.recordPolicyAttempt(of: volume, at: now, job: job.id)
        } catch {
            running.remove(volume)
            try? store.recordPolicyAttempt(of: volume, at: now, job: "")
            try? store.recordPolicyResult(of: volume, success: nil, error: error.message)
            logger.error("scheduled backup not started", metadata: ["volume": "\(volume)", "error": "\(error.message)"])
        }
    }

    private func ended(_ volume: String) { running.remove(volume) }
}
