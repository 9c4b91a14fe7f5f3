import Backupstore
import ConvoyCore
import Synchronization

/// Decompressed, verified blocks for the FUSE threads of one mount: kept in the daemon's `BlockMemory` (one LRU
/// bounded in bytes for every mount), one fetch per block however many reads want it at once, and bounded
/// background prefetching for read-ahead.
///
/// Fetches run as tasks (the store's API is async) on the I/O pool's threads, not Swift's cooperative pool: a
/// process that reads its own backup mount from async code blocks cooperative threads in read(2) until a fetch
/// completes, and on two cores fetches scheduled there could never run. FUSE threads block on a `Delivery` until
/// theirs arrive. Memory is the LRU's capacity plus the blocks in flight, which the FUSE threads and
/// `prefetchLimit` bound.
final class BlockCache: Sendable {
    typealias Outcome = Result<PlainBlock, ConvoyError>

    private struct State {
        var inFlight: [String: Delivery<Outcome>] = [:]
        var prefetching = 0
    }

    private let state = Mutex(State())
    let memory: BlockMemory
    /// This mount's blocks in `memory`: its store's, by hash.
    private let keyPrefix: String
    let source: BlockSource
    private let executor = BlockingIOPool.shared
    /// Prefetches in flight at most, over all files.
    let prefetchLimit: Int
    let observer: (any MountObserver)?

    init(memory: BlockMemory, source: BlockSource, prefetchLimit: Int, observer: (any MountObserver)? = nil) {
        self.memory = memory
        keyPrefix = source.repository.store.location + "#"
        self.source = source
        self.prefetchLimit = prefetchLimit
        self.observer = observer
    }

    /// The most bytes the memory ever held (never above its capacity), this mount's and others'.
    var peakCachedBytes: Int { memory.peakBytes }

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
            for chunk in chunks where !memory.contains(keyPrefix + chunk.hash) && state.inFlight[chunk.hash] == nil {
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
            if let block = memory.get(keyPrefix + hash) { return (.ready(block), nil) }
            if let delivery = state.inFlight[hash] { return (.waiting(delivery), nil) }
            let delivery = Delivery<Outcome>()
            state.inFlight[hash] = delivery
            return (.waiting(delivery), delivery)
        }
        if let started { fetch(chunk, into: started, prefetch: false) }
        if let observer {
            if case .ready = request { observer.lookedUp(hit: true) } else { observer.lookedUp(hit: false) }
        }
        return request
    }

    private func fetch(_ chunk: Chunk, into delivery: Delivery<Outcome>, prefetch: Bool) {
        Task(executorPreference: executor) {
            let start = ContinuousClock.now
            let outcome = await self.source.load(chunk.hash, checksum: chunk.checksum)
            if let observer = self.observer {
                let seconds = (ContinuousClock.now - start) / .seconds(1)
                switch outcome {
                case .success(let block): observer.fetched(bytes: block.count, seconds: seconds, failed: false)
                case .failure: observer.fetched(bytes: 0, seconds: seconds, failed: true)
                }
            }
            self.state.withLock { state in
                state.inFlight[chunk.hash] = nil
                if prefetch { state.prefetching -= 1 }
                if case .success(let block) = outcome { self.memory.insert(self.keyPrefix + chunk.hash, block) }
            }
            delivery.deliver(outcome)
        }
    }
}
