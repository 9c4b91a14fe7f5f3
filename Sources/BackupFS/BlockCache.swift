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
        /// First blocks of pack windows read ahead: a read reaching one reads the next window ahead.
        var windowMarks: Set<String> = []
    }

    /// Pack windows a reader of many small files keeps fetched ahead of it (`readAheadWindows`).
    static let windowsAhead = 2

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
    ///
    /// `following`: the blocks likely read next (the next files' first ones), asked for only when this read
    /// fetches or reaches a window read ahead, to keep `windowsAhead` pack windows fetched ahead of it.
    func blocks(_ chunks: [Chunk], following: () -> [Chunk] = { [] }) -> [Outcome] {
        // The first fetch this read starts reads windows ahead once it has claimed its own window's blocks;
        // a read that reaches a window read ahead reads the next one ahead.
        var ahead: [Chunk]?
        let requests = chunks.map { chunk in
            request(chunk) {
                defer { ahead = [] }
                return ahead ?? (source.windows == nil ? [] : following())
            }
        }
        let reachedWindow = source.windows != nil && ahead == nil && state.withLock { state in
            chunks.contains { state.windowMarks.remove($0.hash) != nil }
        }
        if reachedWindow { readAheadWindows(following(), after: chunks) }
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
        for (chunk, delivery) in started { fetch(chunk, into: delivery, prefetch: true, following: []) }
    }

    /// Starts fetching the pack windows of `following` not yet cached or in flight, until `windowsAhead` windows
    /// beyond that of `current` (the blocks being read, whose window is fetched or claimed) are fetched or on
    /// their way: a tree of small files is read a window ahead of its reader.
    private func readAheadWindows(_ following: [Chunk], after current: [Chunk]) {
        guard let windows = source.windows,
              let placed = windows.windows(of: (current + following).map(\.hash)) else { return }
        var seen = Set(placed.prefix(current.count).compactMap { $0 })
        var chosen: [Chunk] = []
        let present = state.withLock { state in
            following.map { memory.contains(keyPrefix + $0.hash) || state.inFlight[$0.hash] != nil }
        }
        for (chunk, (window, isPresent)) in zip(following, zip(placed.dropFirst(current.count), present)) {
            guard seen.count <= Self.windowsAhead else { break }
            guard let window, seen.insert(window).inserted else { continue }
            if !isPresent { chosen.append(chunk) }
        }
        guard !chosen.isEmpty else { return }
        state.withLock { state in
            if state.windowMarks.count > 1024 { state.windowMarks.removeAll() }  // windows nobody reached
            for chunk in chosen { state.windowMarks.insert(chunk.hash) }
        }
        prefetch(chosen)
    }

    private enum Request {
        case ready(PlainBlock)
        case waiting(Delivery<Outcome>)
    }

    /// A cached block, or the delivery of its fetch, started here when none is in flight (which then reads ahead
    /// the windows of `following`).
    private func request(_ chunk: Chunk, following: () -> [Chunk]) -> Request {
        let hash = chunk.hash
        let (request, started) = state.withLock { state -> (Request, Delivery<Outcome>?) in
            if let block = memory.get(keyPrefix + hash) { return (.ready(block), nil) }
            if let delivery = state.inFlight[hash] { return (.waiting(delivery), nil) }
            let delivery = Delivery<Outcome>()
            state.inFlight[hash] = delivery
            return (.waiting(delivery), delivery)
        }
        if let started { fetch(chunk, into: started, prefetch: false, following: following()) }
        if let observer {
            if case .ready = request { observer.lookedUp(hit: true) } else { observer.lookedUp(hit: false) }
        }
        return request
    }

    /// Fetches `chunk`, and with it the companions in its pack window that are neither cached nor in flight
    /// (claimed here, so that their own requests wait for this fetch); each delivered as soon as it is decoded,
    /// the asked-for block first. Then reads ahead the windows of `following`.
    private func fetch(_ chunk: Chunk, into delivery: Delivery<Outcome>, prefetch: Bool, following: [Chunk]) {
        Task(executorPreference: executor) {
            let start = ContinuousClock.now
            let companions = await self.source.companions(of: chunk)
            let claimed = companions.isEmpty ? [] : self.state.withLock { state in
                companions.compactMap { block -> (PackWindows.Block, Delivery<Outcome>)? in
                    guard !self.memory.contains(self.keyPrefix + block.hash),
                          state.inFlight[block.hash] == nil else { return nil }
                    let delivery = Delivery<Outcome>()
                    state.inFlight[block.hash] = delivery
                    return (block, delivery)
                }
            }
            if !following.isEmpty { self.readAheadWindows(following, after: [chunk]) }
            let blocks = [PackWindows.Block(hash: chunk.hash, checksum: chunk.checksum)] + claimed.map(\.0)
            let deliveries = [delivery] + claimed.map(\.1)
            await self.source.load(blocks) { index, outcome in
                if let observer = self.observer {
                    let seconds = (ContinuousClock.now - start) / .seconds(1)
                    switch outcome {
                    case .success(let block): observer.fetched(bytes: block.count, seconds: seconds, failed: false)
                    case .failure: observer.fetched(bytes: 0, seconds: seconds, failed: true)
                    }
                }
                let hash = blocks[index].hash
                self.state.withLock { state in
                    state.inFlight[hash] = nil
                    if prefetch && index == 0 { state.prefetching -= 1 }
                    if case .success(let block) = outcome { self.memory.insert(self.keyPrefix + hash, block) }
                }
                deliveries[index].deliver(outcome)
            }
        }
    }
}
