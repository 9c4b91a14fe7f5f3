import ConvoyCore

/// The chunks a changed file had in the parent backup, offered again where its bytes did not change.
///
/// A file whose size or mtime moved is reread whole, but most of a large file (a database, a disk image) is
/// usually the same: each parent chunk found at the reading position is checked with its XXH3-128 (19 GB/s here)
/// instead of being scanned for cut points, hashed with SHA-256 and looked up (about 1.3 GB/s together). A chunk
/// is kept only where `FastCDC.cut` would end a chunk at the same place, so the manifest is exactly the one a
/// full rescan gives and deduplication against other backups is unchanged. What a kept chunk trusts is what an
/// unchanged file's chunks trust already: the parent manifest's hash for bytes whose checksum it recorded.
struct ParentChunks {
    private let chunks: [Chunk]
    private let chunker: FastCDC
    /// Whether a parent chunk may hold a position where `chunker` would cut (see `init`): then each one offered is
    /// scanned for cut points (2.9 GB/s) before it is kept.
    private let scansForEarlierCuts: Bool
    private var next = 0
    /// The index of the last chunk found unusable (its bytes changed, or a rescan would cut inside it): not looked
    /// at again when the reader asks again at its offset.
    private var changed = -1

    /// Nil when the parent has no chunks with checksums for this file (none, or a format-1 manifest).
    ///
    /// `endsChunk` assumes no earlier position of a chunk is a cut point: true of chunks `chunker` itself made.
    /// That is known only when both backups cut the file with `FastCDC.standard` (it was a large file then and
    /// is now); otherwise the parent's chunks may come from other sizes (the file crossed `largeFile`, or a
    /// smaller file was backed up before sizes depended on the file's size) and each is scanned.
    init?(_ parent: Entry?, chunker: FastCDC) {
        guard let parent, let chunks = parent.chunks, chunks.contains(where: { $0.checksum != nil }) else {
            return nil
        }
        self.chunks = chunks.sorted { $0.offset < $1.offset }
        self.chunker = chunker
        scansForEarlierCuts = chunker.average != FastCDC.standard.average || parent.size < FastCDC.largeFile
    }

    /// The parent's chunk at `offset` when `available` (the file's bytes from there that the reader holds; with
    /// `atDataEnd`, all of them to the end of the data region) starts with its bytes unchanged and `cut` would
    /// end a chunk after them. Needs no bytes beyond the chunk's, so a reader can ask before it holds a maximum
    /// chunk's worth; a chunk found unusable is not scanned or hashed again when asked again.
    mutating func unchanged(at offset: UInt64, _ available: UnsafeRawBufferPointer, atDataEnd: Bool) -> Kept? {
        while next < chunks.count && chunks[next].offset < offset { next += 1 }
        guard next < chunks.count, chunks[next].offset == offset, next != changed,
              let checksum = chunks[next].checksum else {
            return nil
        }
        let chunk = chunks[next]
        let length = Int(chunk.length)
        guard length > 0, length <= chunker.maximum, length <= available.count else { return nil }
        let bytes = UnsafeRawBufferPointer(rebasing: available[0..<length])
        // At the end of the data, `cut` returns what is left; elsewhere the chunk must end where a cut falls.
        guard (atDataEnd && length == available.count) || chunker.endsChunk(bytes) else { return nil }
        // `cut` of exactly these bytes returns their length only when no earlier position is a cut point.
        guard !scansForEarlierCuts || chunker.cut(bytes) == length else {
            changed = next
            return nil
        }
        guard BlockChecksum.of(bytes) == checksum else {
            changed = next
            return nil
        }
        next += 1
        return Kept(length: length, read: .unchanged(hash: chunk.hash, length: chunk.length, checksum: checksum))
    }

    struct Kept {
        var length: Int
        var read: ChunkRead
    }
}

/// One chunk of a file being backed up, in order: bytes read (to hash, and store unless the store has them),
/// or a parent's chunk found unchanged.
enum ChunkRead {
    case bytes([UInt8])
    case unchanged(hash: String, length: UInt32, checksum: BlockChecksum)
}
