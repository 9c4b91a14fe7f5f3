import Backupstore
import ConvoyCore
import Synchronization

/// One open file: the entry it reads and how far sequential reading has got, to decide on read-ahead. Kept
/// per open (in the FUSE file handle) so that two readers of one file do not spoil each other's pattern.
final class OpenFile: Sendable {
    let node: Int
    let path: String
    /// The chunk after the furthest one read sequentially; 0 before the first read.
    private let front = Mutex(0)

    /// Reads this far behind the front still count as sequential: the kernel's read-ahead requests reach the
    /// multithreaded loop slightly out of order.
    static let reorderTolerance = 4

    init(node: Int, path: String) {
        self.node = node
        self.path = path
    }

    /// Records a read of chunks `touched`; returns the front when the read continues sequential reading (or
    /// starts at the file's beginning), nil for a random read.
    func recordRead(_ touched: Range<Int>) -> Int? {
        front.withLock { front in
            guard touched.lowerBound <= front, touched.lowerBound + Self.reorderTolerance >= front else {
                front = touched.upperBound
                return nil
            }
            front = max(front, touched.upperBound)
            return front
        }
    }
}

/// Part of a read's answer: bytes of a verified block (which the piece keeps alive), or zeros for a hole.
enum ReadPiece: Sendable {
    case block(PlainBlock, Range<Int>)
    case zeros(Int)

    var count: Int {
        switch self {
        case .block(_, let range): range.count
        case .zeros(let count): count
        }
    }
}

/// Serves a file's bytes from its chunks: bisects to the chunks a read touches, fetches only those (holes read
/// as zeros), and when the file is read sequentially prefetches the next blocks.
struct FileReader: Sendable {
    let tree: BackupTree
    let cache: BlockCache
    let readAheadBlocks: Int
    /// Bytes one read-ahead may start at most: prefetched blocks must not push out of the LRU the ones being read.
    let readAheadBytes: Int

    /// The file's bytes from `offset`, at most `count` of them (fewer at the end of the file), as slices of
    /// verified blocks and runs of zeros for holes: the FUSE reply sends them from where they are, without a copy.
    /// Throws the first block that cannot be fetched or fails verification: the read then fails rather than serve
    /// anything else.
    func read(_ file: OpenFile, count: Int, at offset: UInt64) throws(ConvoyError) -> [ReadPiece] {
        let entry = tree.entry(file.node)
        guard offset < entry.size, count > 0 else { return [] }
        let end = min(entry.size, offset + UInt64(count))
        let chunks = entry.chunks ?? []
        let first = Self.firstChunk(endingAfter: offset, in: chunks)
        var last = first
        while last < chunks.count, chunks[last].offset < end { last += 1 }
        let touched = first..<last
        if !touched.isEmpty, let front = file.recordRead(touched) { readAhead(chunks, from: front) }

        let blocks = cache.blocks(Array(chunks[touched])) { followingChunks(after: file.node) }
        var pieces: [ReadPiece] = []
        pieces.reserveCapacity(2 * touched.count + 1)
        var position = offset
        for (index, outcome) in zip(touched, blocks) {
            let chunk = chunks[index]
            let block = try outcome.get()
            guard block.count == Int(chunk.length) else {
                throw ConvoyError(.driverFailure, "block \(chunk.hash) has \(block.count) bytes, "
                    + "the manifest says \(chunk.length)")
            }
            if chunk.offset > position {
                pieces.append(.zeros(Int(chunk.offset - position)))
                position = chunk.offset
            }
            let sliceEnd = min(end, chunk.offset + UInt64(chunk.length))
            pieces.append(.block(block, Int(position - chunk.offset)..<Int(sliceEnd - chunk.offset)))
            position = sliceEnd
        }
        if end > position { pieces.append(.zeros(Int(end - position))) }
        return pieces
    }

    /// The index of the first chunk that ends after `offset` (chunks.count when none): a bisection over the
    /// chunks' offsets, which the manifest keeps sorted and apart.
    static func firstChunk(endingAfter offset: UInt64, in chunks: [Chunk]) -> Int {
        var low = 0
        var high = chunks.count
        while low < high {
            let middle = (low + high) / 2
            if chunks[middle].offset + UInt64(chunks[middle].length) <= offset {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return low
    }

    /// lseek's SEEK_DATA (`data`) or SEEK_HOLE from `offset`, over the chunk map: gaps between chunks are holes,
    /// and so is the end of the file. nil (ENXIO) at or past the end, or for SEEK_DATA past the last data.
    static func seek(in entry: Entry, from offset: UInt64, data: Bool) -> UInt64? {
        guard offset < entry.size else { return nil }
        let chunks = entry.chunks ?? []
        var index = firstChunk(endingAfter: offset, in: chunks)
        if data { return index < chunks.count ? max(offset, chunks[index].offset) : nil }
        var position = offset
        while index < chunks.count, chunks[index].offset <= position {
            position = chunks[index].offset + UInt64(chunks[index].length)
            index += 1
        }
        return position
    }

    /// The first blocks of the files after entry `node` in the manifest's order (a directory's files, then the
    /// next directory's: the order `ls`, `find` and `tar` read a tree in), for reading pack windows ahead.
    private func followingChunks(after node: Int) -> [Chunk] {
        var found: [Chunk] = []
        var index = node + 1
        while index < tree.entries.count, index <= node + 256, found.count < 64 {
            if tree.entries[index].type == .file, let first = tree.entries[index].chunks?.first { found.append(first) }
            index += 1
        }
        return found
    }

    private func readAhead(_ chunks: [Chunk], from front: Int) {
        guard readAheadBlocks > 0, front < chunks.count else { return }
        var ahead: [Chunk] = []
        var bytes = 0
        for chunk in chunks[front..<min(chunks.count, front + readAheadBlocks)] {
            bytes += Int(chunk.length)
            if bytes > readAheadBytes { break }
            ahead.append(chunk)
        }
        cache.prefetch(ahead)
    }
}
