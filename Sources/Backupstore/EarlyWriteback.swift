import CLinux
import ConvoyCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Starts the writeback of files a job will make durable with one `syncfs` at its end, so the disk writes while
/// the job still computes instead of all of it waiting at that sync (the kernel on its own starts at its
/// dirty-page threshold, gigabytes on a large machine). `sync_file_range` blocks while the device's queue is
/// full, so it runs on the I/O pool. Small files are handed over in batches (a pool round trip per 20 KB file
/// cost more than the writeback it started). At most `limit` files wait for the pool, each holding its
/// descriptor; beyond that a file is left to the final sync. A hint only: the sync still makes everything durable.
final class EarlyWriteback: Sendable {
    static let shared = EarlyWriteback(limit: 96, batchBytes: 1 << 20, batchFiles: 32)

    private let waiting = Atomic<Int>(0)
    private let batch = Mutex<Batch>(Batch())
    let limit: Int
    let batchBytes: Int
    let batchFiles: Int

    private struct Batch {
        var files: [Int32] = []
        var bytes = 0
    }

    init(limit: Int, batchBytes: Int, batchFiles: Int) {
        self.limit = limit
        self.batchBytes = batchBytes
        self.batchFiles = batchFiles
    }

    /// Takes ownership of `fd` (a file of `bytes` just written) and closes it, now or with its batch.
    func start(closing fd: Int32, bytes: Int) {
        let ready: [Int32]? = batch.withLock { batch in
            batch.files.append(fd)
            batch.bytes += bytes
            guard batch.bytes >= batchBytes || batch.files.count >= batchFiles else { return nil }
            defer { batch = Batch() }
            return batch.files
        }
        if let ready { submit(ready) }
    }

    /// Hands over the files of an unfinished batch; called before the sync that ends a job, so no descriptor
    /// waits for a next job's writes.
    func flush() {
        let files = batch.withLock { batch in
            defer { batch = Batch() }
            return batch.files
        }
        if !files.isEmpty { submit(files) }
    }

    private func submit(_ files: [Int32]) {
        guard waiting.add(files.count, ordering: .relaxed).newValue <= limit else {
            waiting.subtract(files.count, ordering: .relaxed)
            for fd in files { close(fd) }
            return
        }
        BlockingIOPool.shared.submit { [self] in
            for fd in files {
                _ = convoy_start_writeback(fd)
                close(fd)
            }
            waiting.subtract(files.count, ordering: .relaxed)
        }
    }
}
