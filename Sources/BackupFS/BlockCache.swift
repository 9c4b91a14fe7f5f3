import Backupstore
import ConvoyCore
import Synchronization

/// Decompressed, verified blocks for the FUSE threads: an LRU bounded in bytes, one fetch per block however many
/// reads want it at once, and bounded background prefetching for read-ahead.
///
/// Fetches run as tasks (the store's API is async) on the I/O pool's threads, not Swift's cooperative pool: a
/// process that reads its own backup mount from async code blocks cooperative threads in read(2) until a fetch
/// completes, and on two cores fetches scheduled there could never run. FUSE threads block on a `Delivery` until
/// theirs arrive. Memory is the LRU's capacity plus the blocks in flight, which the FUSE threads and
/// `prefetchLimit` bound.
final class BlockCache: Sendable {
    typealias Outcome = Result<PlainBlock, ConvoyError>

    private struct State {
        var lru: BlockLRU
        var inFlight: [String: Delivery<Outcome>] = [:]
        var prefetching = 0
    }

    private let state: Mutex<State>
    let source: BlockSource
    private let executor = BlockingIOPool.shared
    /// Prefetches in flight at most, over all files.
    let prefetchLimit: Int

    init(capacity: Int, source: BlockSource, prefetchLimit: Int) {
        state = Mutex(State(lru: BlockLRU(capacity: capacity)))
        self.source = source
        self.prefetchLimit = prefetchLimit
    }

    /// The most bytes the LRU ever held (never above its capacity).
    var peakCachedBytes: Int { state.withLock { $0.lru.peakBytes } }

    /// The blocks one read needs, fetched concurrently. Blocks the calling thread until all have arrived, so it
    /// must be one of libfuse's threads, never a cooperative one.
    func blocks(_ chunks: [Chunk]) -> [Outcome] {
        let requests = chunks.map(request)
        return requests.map { request in
            switch request {
            case .ready(let block): .success(block)
            case .waiting(let delivery):
                delivery.wait() ?? .failure(ConvoyError(.internalFailure, "a block fetch ended without a result"))
            }
        }
    }

    /// Starts fetching the blocks neither cached nor in flight, without waiting; stops once `prefetchLimit`
    /// prefetches are in flight.
    func prefetch(_ chunks: [Chunk]) {
        let started = state.withLock { state -> [(Chunk, Delivery<Outcome>)] in
            var started: [(Chunk, Delivery<Outcome>)] = []
            for chunk in chunks where !state.lru.contains(chunk.hash) && state.inFlight[chunk.hash] == nil {
                guard state.prefetching < prefetchLimit else { break }
                state.prefetching += 1
                let delivery = Delivery<Outcome>()
                state.inFlight[chunk.hash] = delivery
                started.append((chunk, delivery))
            }
            return started
        }
        for (chunk, delivery) in started { fetch(chunk, into: delivery, prefetch: true) }
    }

    private enum Request {
        case ready(PlainBlock)
        case waiting(Delivery<Outcome>)
    }

    /// A cached block, or the delivery of its fetch, started here when none is in flight.
    private func request(_ chunk: Chunk) -> Request {
        let hash = chunk.hash
        let (request, started) = state.withLock { state -> (Request, Delivery<Outcome>?) in
            if let block = state.lru.get(hash) { return (.ready(block), nil) }
            if let delivery = state.inFlight[hash] { return (.waiting(delivery), nil) }
            let delivery = Delivery<Outcome>()
            state.inFlight[hash] = delivery
            return (.waiting(delivery), delivery)
        }
        if let started { fetch(chunk, into: started, prefetch: false) }
        return request
    }

    private func fetch(_ chunk: Chunk, into delivery: Delivery<Outcome>, prefetch: Bool) {
        Task(executorPreference: executor) {
            let outcome = await self.source.load(chunk.hash, checksum: chunk.checksum)
            self.state.withLock { state in
                state.inFlight[chunk.hash] = nil
                if prefetch { state.prefetching -= 1 }
                if case .success(let block) = outcome { state.lru.insert(chunk.hash, block) }
            }
            delivery.deliver(outcome)
        }
    }
}
