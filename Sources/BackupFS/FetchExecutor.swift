import ConvoyCore
import Backupstore

/// Runs the block-fetch tasks on the I/O pool's threads rather than Swift's cooperative pool. A process that
/// reads its own backup mount from async code blocks cooperative threads in read(2) until a fetch completes; on a
/// two-core machine two such reads would take the whole pool, and fetches scheduled there could never run.
final class FetchExecutor: TaskExecutor {
    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        BlockingIOPool.shared.submit { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
