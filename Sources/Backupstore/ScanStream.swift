import ConvoyCore
import Foundation
import Synchronization

/// A tree scan running on a thread of its own while a backup consumes its entries, in order, in batches: reading
/// the first changed files overlaps with examining the rest of the tree (after a cold start, a tree of 10,000
/// files takes about a tenth of a second to examine, which is a tenth of an incremental backup here).
final class ScanStream: Sendable {
    enum Event: Sendable {
        case entries(TreeScanner.Batch)
        case failed(ConvoyError)
        /// The whole tree was delivered. A stream that ends without it (the consumer was cancelled) is partial.
        case complete
    }

    let events: AsyncStream<Event>
    private let stopped = Atomic<Bool>(false)

    init(_ scanner: TreeScanner) {
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self)
        events = stream
        let thread = Thread { [self] in
            do throws(ConvoyError) {
                try scanner.scan { batch in
                    guard !self.isStopped else { return false }
                    continuation.yield(.entries(batch))
                    return true
                }
                continuation.yield(.complete)
            } catch {
                if !isStopped { continuation.yield(.failed(error)) }
            }
            continuation.finish()
        }
        thread.name = "convoy-scan"
        thread.stackSize = 8 << 20  // the walk recurses once per directory level
        thread.start()
    }

    private var isStopped: Bool { stopped.load(ordering: .relaxed) }

    /// The consumer gave up (an error, or cancellation): the scan ends at its next batch.
    func stop() { stopped.store(true, ordering: .relaxed) }
}
