import ConvoyCore
import Synchronization

/// For a reader that knows every block it will read, and in what order (a restore): blocks that sit in packs are
/// fetched a pack range at a time, ahead of need, instead of one request per block. A restore of 2,000 small files
/// from S3 made 2,000 ranged GETs of the same few dozen packs; now it makes one per pack (restic reads its packs
/// the same way). The files are read in the order of the ranges their blocks are in (`readingOrder`), so a fetched
/// range is used soon and wholly.
///
/// Memory: a range is dropped once its last block is used; at most `ahead` ranges are held, and a fetch that
/// takes the held bytes above `budget` first takes back a range fetched ahead that nobody has asked for yet, else
/// lets go of the range used longest ago (its remaining blocks are then read one by one, as without this type).
/// Any failure to fetch a range falls back to reading the block on its own, which reports a missing or damaged
/// block exactly as before.
final class PackReadAhead: Sendable {
    /// Needed blocks of one pack that are fetched with one request.
    struct Range: Sendable {
        var pack: String
        var offset: Int
        var length: Int
        /// How many reads of its blocks the files will make.
        var uses: Int
    }

    /// Needed blocks closer than this in a pack are fetched in one range (the bytes between them are read too).
    static let gapToBridge = 1 << 20

    private let repository: BackupRepository
    private let ranges: [Range]
    /// Which range holds each packed block, and where in it.
    private let places: [String: (range: Int, offset: Int, length: Int)]
    private let ahead: Int
    private let budget: Int
    private let state: Mutex<State>

    private struct State {
        var fetches: [Int: Task<ObjectBytes?, Never>] = [:]
        var usesLeft: [Int]
        /// Ranges whose fetch has started (and not been taken back unused).
        var started: [Bool]
        /// Ranges some reader has asked for since their fetch started.
        var claimed: Set<Int> = []
        /// Ranges let go before their last use: their blocks are read one by one.
        var dropped: Set<Int> = []
        /// Below it, every range has been started: where fetching ahead looks first.
        var cursor = 0
        var heldBytes = 0
        var lastUsed: [Int: Int] = [:]
        var clock = 0
    }

    /// `files`: each file's block hashes, in the order the file's blocks are read. `readingOrder` then says in
    /// which order to read the files: grouped by the pack range their first block sits in (files backed up
    /// together were packed together, but a backup reads a tree on several threads, so manifest order spreads a
    /// pack's blocks across the whole restore), files with no packed block first.
    init(repository: BackupRepository, files: [[String]], ahead: Int, budget: Int) async throws(ConvoyError) {
        self.repository = repository
        self.ahead = max(1, ahead)
        self.budget = budget
        let located = try await repository.packs.locate(files.joined(), in: repository.store)
        let plan = Self.plan(files: files, located: located)
        ranges = plan.ranges
        places = plan.places
        readingOrder = plan.order
        state = Mutex(State(usesLeft: plan.ranges.map(\.uses), started: plan.ranges.map { _ in false }))
    }

    /// The order to read `files` in (indexes into them).
    let readingOrder: [Int]

    private typealias Place = (range: Int, offset: Int, length: Int)

    /// Ranges of packs to fetch, numbered in the order the files, read in `order`, first need them.
    private static func plan(files: [[String]], located: [String: PackedBlock])
        -> (ranges: [Range], places: [String: Place], order: [Int]) {
        // 1. Each pack's needed blocks, by offset, cut into ranges where a gap is too wide to read through.
        var byPack: [String: [(hash: String, place: PackedBlock)]] = [:]
        for (hash, place) in located { byPack[place.pack, default: []].append((hash, place)) }
        var ranges: [Range] = []
        var places: [String: Place] = [:]
        for (pack, blocks) in byPack {
            for (hash, place) in blocks.sorted(by: { $0.place.offset < $1.place.offset }) {
                if let last = ranges.last, last.pack == pack,
                   place.offset - (last.offset + last.length) <= gapToBridge {
                    ranges[ranges.count - 1].length = max(last.length, place.offset + place.length - last.offset)
                } else {
                    ranges.append(Range(pack: pack, offset: place.offset, length: place.length, uses: 0))
                }
                let index = ranges.count - 1
                places[hash] = (index, place.offset - ranges[index].offset, place.length)
            }
        }
        // 2. Files by where their first packed block is: ranges ranked by the first file (in manifest order)
        //    that needs them, then by offset.
        var rank = [Int](repeating: Int.max, count: ranges.count)
        for (file, hashes) in files.enumerated() {
            for hash in hashes { if let place = places[hash] { rank[place.range] = min(rank[place.range], file) } }
        }
        func key(_ file: Int) -> (Int, Int, Int, Int) {
            guard let place = files[file].lazy.compactMap({ places[$0] }).first else { return (-1, 0, 0, file) }
            return (rank[place.range], place.range, place.offset, file)
        }
        let keys = files.indices.map(key)
        let order = files.indices.sorted { keys[$0] < keys[$1] }
        // 3. Ranges renumbered by first use in that order, with their uses counted.
        var number = [Int](repeating: -1, count: ranges.count)
        var numbered: [Range] = []
        for file in order {
            for hash in files[file] {
                guard let place = places[hash] else { continue }
                if number[place.range] < 0 {
                    number[place.range] = numbered.count
                    numbered.append(ranges[place.range])
                }
                numbered[number[place.range]].uses += 1
            }
        }
        for (hash, place) in places { places[hash] = (number[place.range], place.offset, place.length) }
        return (numbered, places, order)
    }

    deinit {
        // A restore that failed leaves fetches running: nothing will read them.
        state.withLock { state in for fetch in state.fetches.values { fetch.cancel() } }
    }

    /// How many ranges cover the packed blocks (for tests and logs).
    var rangeCount: Int { ranges.count }

    /// Block `hash`'s plain content, verified as `BackupRepository.plainBlockReadOnce` does.
    func block(_ hash: String, checksum: BlockChecksum?) async throws(ConvoyError) -> PlainBlock {
        guard let place = places[hash], let fetch = claim(place.range) else {
            return try await repository.plainBlockReadOnce(hash, checksum: checksum)
        }
        let bytes = await fetch.value
        defer { release(place.range) }
        guard let bytes, place.offset + place.length <= bytes.count else {
            return try await repository.plainBlockReadOnce(hash, checksum: checksum)
        }
        return try repository.plainBlock(hash, at: place.offset, length: place.length, of: bytes, checksum: checksum)
    }

    /// The fetch of range `index`, started now if it was not, with the next ranges ahead of it; nil when the
    /// range was let go.
    private func claim(_ index: Int) -> Task<ObjectBytes?, Never>? {
        state.withLock { state -> Task<ObjectBytes?, Never>? in
            guard !state.dropped.contains(index) else { return nil }
            state.clock += 1
            state.lastUsed[index] = state.clock
            state.claimed.insert(index)
            let fetch = state.fetches[index] ?? start(index, in: &state)
            fillAhead(&state)
            return fetch
        }
    }

    /// One use of range `index` done: the range is let go after its last.
    private func release(_ index: Int) {
        state.withLock { state in
            state.usesLeft[index] -= 1
            if state.usesLeft[index] <= 0 { drop(index, in: &state) }
            fillAhead(&state)
        }
    }

    private func start(_ index: Int, in state: inout State) -> Task<ObjectBytes?, Never> {
        let range = ranges[index]
        let store = repository.store
        let fetch = Task { () -> ObjectBytes? in
            do throws(ConvoyError) {
                return try await store.getOnceRange(BackupRepository.packKey(range.pack), offset: range.offset,
                                                    length: range.length)
            } catch {
                return nil  // each block is then read on its own, which says what is wrong
            }
        }
        state.fetches[index] = fetch
        state.started[index] = true
        state.heldBytes += range.length
        // Over budget: first take back the range fetched furthest ahead that nobody has asked for yet (fetched
        // again when asked for), else let go of the range used longest ago; never the one just started.
        while state.heldBytes > budget {
            let others = state.fetches.keys.filter { $0 != index }
            if let ahead = others.filter({ !state.claimed.contains($0) }).max() {
                state.fetches.removeValue(forKey: ahead)?.cancel()
                state.heldBytes -= ranges[ahead].length
                state.started[ahead] = false
                state.cursor = min(state.cursor, ahead)
            } else if let oldest = others.min(by: { state.lastUsed[$0, default: 0] < state.lastUsed[$1, default: 0] }) {
                drop(oldest, in: &state)
            } else {
                break
            }
        }
        return fetch
    }

    private func drop(_ index: Int, in state: inout State) {
        guard state.fetches.removeValue(forKey: index) != nil else { return }
        state.heldBytes -= ranges[index].length
        if state.usesLeft[index] > 0 { state.dropped.insert(index) }
    }

    /// Starts fetches of the first ranges not yet started, while fewer than `ahead` are held and the budget
    /// allows: reading goes in range order, a few files at a time.
    private func fillAhead(_ state: inout State) {
        while state.fetches.count < ahead {
            while state.cursor < ranges.count,
                  state.started[state.cursor] || state.dropped.contains(state.cursor) {
                state.cursor += 1
            }
            guard state.cursor < ranges.count, state.heldBytes + ranges[state.cursor].length <= budget else { return }
            _ = start(state.cursor, in: &state)
        }
    }
}
