import Foundation
import Synchronization

/// Threads for blocking file I/O. Swift's cooperative pool has one thread per core; a cold `read` or `open`
/// there stalls a core, so with two cores a restore kept barely one busy. Running those calls here lets many
/// requests be in flight while the cooperative threads hash and decompress.
public final class BlockingIOPool: Sendable {
    /// One pool for the process: its threads are created once and live as long as the process.
    public static let shared = BlockingIOPool(threads: 12)

    private let queue = Mutex<[@Sendable () -> Void]>([])
    private let wakeup = NSCondition()

    /// `setUp` runs first on each thread (e.g. to lower its priority).
    public init(threads: Int, name: String = "convoy-io", setUp: (@Sendable () -> Void)? = nil) {
        for index in 0..<max(1, threads) {
            let thread = Thread { [self] in
                setUp?()
                self.work()
            }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    private func work() {
        while true {
            wakeup.lock()
            var job = queue.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            while job == nil {
                wakeup.wait()
                job = queue.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            }
            wakeup.unlock()
            job?()
        }
    }

    /// Runs `job` on one of the pool's threads without waiting for it.
    public func submit(_ job: @escaping @Sendable () -> Void) {
        wakeup.lock()
        queue.withLock { $0.append(job) }
        wakeup.signal()
        wakeup.unlock()
    }

    /// Runs `body` on one of the pool's threads and returns its result to the calling task.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws(ConvoyError) -> T)
        async throws(ConvoyError) -> T {
        let result: Result<T, ConvoyError> = await withCheckedContinuation { continuation in
            submit {
                do throws(ConvoyError) { continuation.resume(returning: .success(try body())) } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }
}

/// Async code can run on the pool's threads too (`withTaskExecutorPreference`): code that blocks in reads of the
/// daemon's own FUSE mounts, or work that must run at the pool's priority.
extension BlockingIOPool: TaskExecutor {
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        submit { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
