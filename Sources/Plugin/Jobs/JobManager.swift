import Backupstore
import CLinux
import ConvoyCore
import Foundation
import Logging
import Synchronization

/// Long work (snapshots, backups, restores, verification) runs as jobs in the daemon: the client that asked may
/// go away, and the job goes on. Progress is kept in memory; start and end are recorded in the state database, so
/// after a crash the jobs that were running show as interrupted.
public actor JobManager {
    private let store: StateStore
    private let logger: Logger
    private var live: [String: ClientAPI.Job] = [:]
    /// Latest progress per running job, written from the job's own task without an actor hop.
    private var progress: [String: ProgressBox] = [:]
    /// Callers of `waitForEnd`, resumed when their job ends (or by their own timeout, which leaves its token in
    /// `abandoned` when it comes before the waiter has registered).
    private var endWaiters: [String: [Int: CheckedContinuation<Void, Never>]] = [:]
    private var abandoned: Set<Int> = []
    private var nextWaiter = 0
    /// When each live job started, for its duration in the metrics.
    private var startedAt: [String: ContinuousClock.Instant] = [:]
    private let metrics: DaemonMetrics?

    /// Ended jobs kept in the database; older ones are forgotten as new ones end.
    public let keptJobs: Int
    public static let defaultKeptJobs = 1000

    public init(store: StateStore, logger: Logger, keptJobs: Int = defaultKeptJobs, metrics: DaemonMetrics? = nil) {
        self.store = store
        self.logger = logger
        self.keptJobs = keptJobs
        self.metrics = metrics
    }

    public typealias Work = @Sendable (_ progress: @escaping ProgressSink) async throws(ConvoyError) -> [String: String]

    /// Starts `work` in the background and returns the job as it starts.
    public func start(kind: String, target: String, work: @escaping Work) throws(ConvoyError) -> ClientAPI.Job {
        let job = ClientAPI.Job(
            id: ObjectName.generate(prefix: "job"), kind: kind, target: target, state: .running, phase: "starting",
            bytesDone: 0, bytesTotal: 0, itemsDone: 0, itemsTotal: 0, startedAt: Self.now(), finishedAt: nil,
            result: nil, error: nil)
        try store.saveJob(job)
        live[job.id] = job
        startedAt[job.id] = .now
        metrics?.jobStarted(kind: kind)
        logger.info("job started", metadata: ["job": "\(job.id)", "kind": "\(kind)", "target": "\(target)"])
        let id = job.id
        let box = ProgressBox()
        progress[id] = box
        Task {
            do throws(ConvoyError) {
                let result = try await work { box.set($0) }
                self.finish(id, result: result, error: nil)
            } catch {
                self.finish(id, result: nil, error: error.message)
            }
        }
        return job
    }

    /// Runs `work` as a job and waits for it (for callers that must answer only when done, like Docker's Create):
    /// the succeeded job, or its error.
    public func run(kind: String, target: String, work: @escaping Work) async throws(ConvoyError) -> ClientAPI.Job {
        try await wait(for: try start(kind: kind, target: target, work: work).id)
    }

    /// Waits for job `id` to end: the succeeded job, or its error.
    public func wait(for id: String) async throws(ConvoyError) -> ClientAPI.Job {
        while true {
            guard let current = await waitForEnd(id, upTo: .seconds(5)) else {
                throw ConvoyError(.internalFailure, "job \(id) vanished")
            }
            switch current.state {
            case .running: continue
            case .succeeded: return current
            case .failed, .interrupted: throw ConvoyError(.driverFailure, current.error ?? "job \(id) failed")
            }
        }
    }

    /// The job once it has ended, or as it is after `timeout` if it is still running: clients follow jobs with
    /// this instead of polling, so a short job's end is seen at once rather than at the next poll.
    public func waitForEnd(_ id: String, upTo timeout: Duration) async -> ClientAPI.Job? {
        guard let current = job(id) else { return nil }
        guard current.state == .running else { return current }
        let token = nextWaiter
        nextWaiter += 1
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.registerEndWaiter(id, token) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
            self.releaseEndWaiter(id, token)
        }
        return job(id)
    }

    private func registerEndWaiter(_ id: String, _ token: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if abandoned.remove(token) != nil || live[id]?.state != .running {
                continuation.resume()
            } else {
                endWaiters[id, default: [:]][token] = continuation
            }
        }
    }

    private func releaseEndWaiter(_ id: String, _ token: Int) {
        if let continuation = endWaiters[id]?.removeValue(forKey: token) {
            continuation.resume()
        } else if live[id]?.state == .running {
            abandoned.insert(token)  // its registration has not run yet
        }
    }

    public func job(_ id: String) -> ClientAPI.Job? {
        if let job = live[id] { return withProgress(job) }
        return (try? store.job(id)) ?? nil
    }

    /// Jobs running now, by kind (metrics).
    func runningKinds() -> [String: Int] {
        live.values.filter { $0.state == .running }.reduce(into: [:]) { $0[$1.kind, default: 0] += 1 }
    }

    public func jobs() -> [ClientAPI.Job] {
        let recorded = (try? store.jobs()) ?? []
        return recorded.map { live[$0.id].map(withProgress) ?? $0 }
    }

    private func withProgress(_ job: ClientAPI.Job) -> ClientAPI.Job {
        guard let current = progress[job.id]?.get() else { return job }
        var job = job
        if job.state == .running { job.phase = current.phase }
        job.bytesDone = current.bytesDone
        job.bytesTotal = current.bytesTotal
        job.itemsDone = current.itemsDone
        job.itemsTotal = current.itemsTotal
        return job
    }

    private func finish(_ id: String, result: [String: String]?, error: String?) {
        guard var job = live[id] else { return }
        job.state = error == nil ? .succeeded : .failed
        job.phase = error == nil ? "done" : "failed"
        job.result = result
        job.error = error
        job.finishedAt = Self.now()
        live[id] = job
        for waiter in (endWaiters.removeValue(forKey: id) ?? [:]).values { waiter.resume() }
        if let metrics, let started = startedAt.removeValue(forKey: id) {
            metrics.jobEnded(kind: job.kind, succeeded: error == nil, duration: .now - started,
                             bytesDone: progress[id]?.get()?.bytesDone ?? 0, result: result)
        }
        do {
            try store.saveJob(job)
            try store.pruneJobs(keeping: keptJobs)
        } catch {
            logger.error("cannot record the end of job \(id): \(error.message)")
        }
        if let error {
            logger.error("job failed", metadata: ["job": "\(id)", "error": "\(error)"])
        } else {
            logger.info("job done", metadata: ["job": "\(id)"])
        }
        // The last job running gives back what it freed (the heap keeps it for reuse while work goes on).
        if !live.values.contains(where: { $0.state == .running }) { convoy_release_free_memory() }
        // Finished jobs stay in memory briefly for clients polling them, then only in the database.
        Task {
            try? await Task.sleep(for: .seconds(600))
            self.forget(id)
        }
    }

    private func forget(_ id: String) {
        live[id] = nil
        progress[id] = nil
    }

    static func now() -> String { Date().formatted(.iso8601) }
}

/// The latest progress of one job.
final class ProgressBox: Sendable {
    private let value = Mutex<WorkProgress?>(nil)

    func set(_ progress: WorkProgress) { value.withLock { $0 = progress } }
    func get() -> WorkProgress? { value.withLock { $0 } }
}
