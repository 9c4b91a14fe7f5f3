import CLinux
import ConvoyCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Starts the writeback of files a job will make durable with one `syncfs` at its end, so the disk writes while
/// the job still computes instead of all of it waiting at that sync (the kernel on its own starts at its
/// dirty-page threshold, gigabytes on a large machine). `sync_file_range` blocks while the device's queue is
/// full, so it runs on the I/O pool; at most `limit` files wait for it, each holding its descriptor, and beyond
/// that a file is left to the final sync. A hint only: the sync still makes everything durable.
final class EarlyWriteback: Sendable {
    static let shared = EarlyWriteback(limit: 64)

    private let waiting = Atomic<Int>(0)
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// Takes ownership of `fd` (a file just written) and closes it.
    func start(closing fd: Int32) {
        guard waiting.add(1, ordering: .relaxed).newValue <= limit else {
            waiting.subtract(1, ordering: .relaxed)
            close(fd)
            return
        }
        BlockingIOPool.shared.submit { [self] in
            _ = convoy_start_writeback(fd)
            close(fd)
            waiting.subtract(1, ordering: .relaxed)
        }
    }
}
