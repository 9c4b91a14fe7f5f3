import ConvoyCore
import Synchronization

/// For a reader that cannot know what it reads next but reads one tree (a backup mount): a block that sits in a
/// pack is fetched with the tree's other blocks in the same window of that pack, in one read. Small files backed
/// up together were packed together, and `tar`, `cp -r` or `grep -r` read them together: a cold directory of
/// small files costs a read per window instead of one per file (`PackReadAhead` is the same idea for a restore,
/// which knows its whole order in advance).
///
/// Windows are aligned (a block's is its offset divided by the window size), so every block of a window brings
/// the same companions and two windows never overlap. The read spans the window's first to last block of the
/// tree; bytes of other backups' blocks between them are read through. A failed range read falls back to reading
/// each block alone, which reports a missing or damaged block exactly as before.
public final class PackWindows: Sendable {
    /// A few dozen small files, a few large blocks on S3 (a backup mount takes at most an eighth of its memory).
    public static let defaultSize = 4 << 20

    public struct Block: Sendable, Equatable {
        public var hash: String
        public var checksum: BlockChecksum?

        public init(hash: String, checksum: BlockChecksum?) {
            self.hash = hash
            self.checksum = checksum
        }
    }

    private struct Place: Sendable {
        var window: Int
        var offset: Int
        var length: Int
    }

    /// Where the tree's packed blocks are, by window.
    private struct Layout: Sendable {
        var places: [String: Place] = [:]
        var packs: [String] = []
        /// Each window's blocks, by offset.
        var windows: [[Block]] = []
    }

    private let repository: BackupRepository
    private let size: Int
    /// The tree's entries (shared with its index, not copied): their chunks are gathered when the layout is built,
    /// not at mount, which stays quick for a tree of millions of chunks.
    private let entries: [Entry]
    /// Built once, at the first block asked for (the pack indexes are loaded then anyway); built again after a
    /// failure to load them.
    private let building = Mutex<Task<Layout?, Never>?>(nil)
    /// The layout once built, for the synchronous `windows(of:)`.
    private let built = Mutex<Layout?>(nil)

    /// `entries`: the tree's (a manifest's). `size`: the window, in bytes of the pack.
    public init(repository: BackupRepository, entries: [Entry], size: Int = defaultSize) {
        self.repository = repository
        self.size = max(1, size)
        self.entries = entries
    }

    /// The tree's other blocks in `hash`'s window ([] when it is not packed, or the pack indexes cannot be read:
    /// the block's own read then says why).
    public func companions(of hash: String) async -> [Block] {
        guard let layout = await layout(), let place = layout.places[hash] else { return [] }
        return layout.windows[place.window].filter { $0.hash != hash }
    }

    /// The window each of `hashes` is in (nil: not packed), from one state of the layout; nil when the layout is
    /// not built yet (it is at the first `companions(of:)`). For a reader choosing windows to read ahead without
    /// waiting.
    public func windows(of hashes: [String]) -> [Int?]? {
        built.withLock { layout in layout.map { layout in hashes.map { layout.places[$0]?.window } } }
    }

    /// Reads `blocks` (one window's, from `companions(of:)` and the block they are companions of), one range read
    /// for those still packed where the layout says; `each` gets every block's outcome, in the order given, so the
    /// first one asked for is served first.
    public func read(_ blocks: [Block], each: (Int, Result<PlainBlock, ConvoyError>) -> Void) async {
        let fetched = blocks.count > 1 ? await fetch(blocks) : nil
        for (index, block) in blocks.enumerated() {
            if let fetched, let place = fetched.layout.places[block.hash], place.window == fetched.window,
               let plain = decoded(block, at: place.offset - fetched.offset, length: place.length,
                                   in: fetched.bytes) {
                each(index, .success(plain))
                continue
            }
            do throws(ConvoyError) {
                each(index, .success(try await repository.plainBlockReadOnce(block.hash, checksum: block.checksum)))
            } catch {
                each(index, .failure(error))
            }
        }
    }

    /// The range of `blocks`' window that holds them all; nil when they are not all in one window, or the read
    /// fails.
    private func fetch(_ blocks: [Block]) async -> (layout: Layout, window: Int, bytes: ObjectBytes, offset: Int)? {
        guard let layout = await layout() else { return nil }
        let places = blocks.compactMap { layout.places[$0.hash] }
        guard let first = places.first, places.allSatisfy({ $0.window == first.window }),
              let start = places.map(\.offset).min(), let end = places.map({ $0.offset + $0.length }).max() else {
            return nil
        }
        let key = BackupRepository.packKey(layout.packs[first.window])
        guard let bytes = try? await repository.store.getOnceRange(key, offset: start, length: end - start) else {
            return nil
        }
        return (layout, first.window, bytes, start)
    }

    /// The block decoded from its bytes in a fetched range; nil when the range came back short or the bytes do
    /// not verify (a collection may have rewritten the pack since the layout was made): the block is then read
    /// alone, which finds it where it is now or says what is wrong.
    private func decoded(_ block: Block, at offset: Int, length: Int, in bytes: ObjectBytes) -> PlainBlock? {
        guard offset >= 0, offset + length <= bytes.count else { return nil }
        return try? repository.plainBlock(block.hash, at: offset, length: length, of: bytes, checksum: block.checksum)
    }

    private func layout() async -> Layout? {
        let task = building.withLock { building -> Task<Layout?, Never> in
            if let running = building { return running }
            let repository = repository
            let entries = entries
            let size = size
            // On the I/O pool, as the fetches waiting for it: a process reading its own mount from async code
            // may hold the cooperative threads.
            let task = Task(executorPreference: BlockingIOPool.shared) { () -> Layout? in
                var blocks: [String: BlockChecksum?] = [:]
                for entry in entries { for chunk in entry.chunks ?? [] { blocks[chunk.hash] = chunk.checksum } }
                guard let located = try? await repository.packs.locate(blocks.keys, in: repository.store) else {
                    return nil
                }
                let layout = Self.layout(located, blocks: blocks, size: size)
                self.built.withLock { $0 = layout }
                return layout
            }
            building = task
            return task
        }
        guard let layout = await task.value else {
            building.withLock { if $0 == task { $0 = nil } }
            return nil
        }
        return layout
    }

    private static func layout(_ located: [String: PackedBlock], blocks: [String: BlockChecksum?],
                               size: Int) -> Layout {
        var numbers: [String: Int] = [:]  // "pack/window" -> window number
        var layout = Layout()
        let byPlace = located.sorted { ($0.value.pack, $0.value.offset) < ($1.value.pack, $1.value.offset) }
        for (hash, place) in byPlace {
            let key = "\(place.pack)/\(place.offset / size)"
            let window = numbers[key] ?? layout.windows.count
            if window == layout.windows.count {
                numbers[key] = window
                layout.windows.append([])
                layout.packs.append(place.pack)
            }
            layout.windows[window].append(Block(hash: hash, checksum: blocks[hash] ?? nil))
            layout.places[hash] = Place(window: window, offset: place.offset, length: place.length)
        }
        return layout
    }
}
