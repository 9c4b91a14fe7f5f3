import ConvoyCore
import Synchronization

/// Puts one job's new blocks into a store: a large block as an object of its own, small ones gathered into packs
/// with an index object each. A file per 20 KB block cost an inode each, twice (snapshot store, then the
/// destination), and creating inodes was most of backing up a tree of small files.
///
/// Nothing written is durable or visible before `BackupRepository.commit(_:)`, which a manifest write makes first;
/// a job that fails leaves at most packs no manifest references, for the next collection.
final class BlockWriter: Sendable {
    /// Encoded blocks up to this size are packed (FastCDC's chunks of large files are mostly bigger).
    static let packedBlockLimit = 256 << 10
    /// A pack is written once it holds this much.
    static let packSize = 8 << 20

    let repository: BackupRepository
    private let open = Mutex<OpenPack?>(nil)
    private let written = Mutex<[(id: String, entries: [PackEntry])]>([])
    /// Buffers of written packs, for the next ones.
    private let spare = Mutex<[AlignedBuffer]>([])
    /// Callers adding to packs at once, one of them writing the pack it filled. A copy to S3 reads blocks faster
    /// than it uploads them, and each of its 24 tasks had a full pack waiting for its PUT: the daemon peaked at
    /// 960 MiB for a 530 MB upload. Now a caller waits before it adds while the permits are all writing.
    private let packWrites: AsyncLimit

    private struct OpenPack {
        var id: String
        var buffer: AlignedBuffer
        var entries: [PackEntry] = []
        var hashes: Set<String> = []
    }

    init(repository: BackupRepository) {
        self.repository = repository
        packWrites = AsyncLimit(permits: max(4, repository.store.requestConcurrency / 4))
    }

    /// `encoded` as BlockCodec made it: an encrypted store's repository seals it here.
    func put(_ hash: String, _ encoded: [UInt8]) async throws(ConvoyError) {
        guard repository.cipher != nil else { return try await putStored(hash, encoded) }
        try await put(hash, ObjectBytes(encoded))
    }

    /// A block as the store holds it already (sealed, in an encrypted store): a collection moving it to a new pack.
    func putStored(_ hash: String, _ stored: [UInt8]) async throws(ConvoyError) {
        guard isPacked(stored.count) else {
            try await repository.store.putDeferred(BackupRepository.blockKey(hash), stored)
            return
        }
        try await putPacked(hash, ObjectBytes(stored))
    }

    func put(_ hash: String, _ encoded: ObjectBytes) async throws(ConvoyError) {
        let encoded = try repository.sealed(hash, encoded)
        guard isPacked(encoded.count) else {
            try await repository.store.putDeferred(BackupRepository.blockKey(hash), encoded)
            return
        }
        try await putPacked(hash, encoded)
    }

    private func isPacked(_ count: Int) -> Bool {
        repository.packs.enabled
            && (count <= Self.packedBlockLimit || (repository.store.packsLargeBlocks && count <= Self.packSize))
    }

    private func putPacked(_ hash: String, _ encoded: ObjectBytes) async throws(ConvoyError) {
        try await packWrites.run { () async throws(ConvoyError) in
            let full = try encoded.withUnsafeBytes { bytes throws(ConvoyError) in try append(hash, bytes) }
            if let full { try await write(full) }
        }
    }

    /// Writes the last, partly filled pack. Returns the packs written, for the store's directory once durable.
    func finish() async throws(ConvoyError) -> [(id: String, entries: [PackEntry])] {
        let last = open.withLock { current -> OpenPack? in
            defer { current = nil }
            return current
        }
        if let last, !last.entries.isEmpty { try await write(last) }
        return written.withLock { $0 }
    }

    /// Adds a block to the open pack; returns the pack when it is full (the caller writes it).
    private func append(_ hash: String, _ bytes: UnsafeRawBufferPointer) throws(ConvoyError) -> OpenPack? {
        try open.withLock { current throws(ConvoyError) -> OpenPack? in
            // Taken out first, so the changes below are to the only copy.
            var pack: OpenPack
            if let existing = current { pack = existing } else { pack = try newPack() }
            current = nil
            if !pack.hashes.contains(hash) {
                if pack.buffer.count + bytes.count > pack.buffer.capacity, !pack.entries.isEmpty {
                    // A large block (a store that packs them) that does not fit: this pack is written as it is.
                    var next = try newPack()
                    next.hashes.insert(hash)
                    next.entries.append(PackEntry(hash: hash, offset: 0, length: bytes.count))
                    guard next.buffer.append(bytes) else {
                        spare.withLock { $0.append(next.buffer) }
                        current = pack
                        throw ConvoyError(.internalFailure,
                                          "block \(hash) (\(bytes.count) bytes) does not fit in pack \(next.id)")
                    }
                    current = next
                    return pack
                }
                let offset = pack.buffer.count
                guard pack.buffer.append(bytes) else {
                    current = pack
                    throw ConvoyError(.internalFailure,
                                      "block \(hash) (\(bytes.count) bytes) does not fit in pack \(pack.id)")
                }
                pack.hashes.insert(hash)
                pack.entries.append(PackEntry(hash: hash, offset: offset, length: bytes.count))
            }
            if pack.buffer.count >= Self.packSize { return pack }
            current = pack
            return nil
        }
    }

    private func newPack() throws(ConvoyError) -> OpenPack {
        guard let buffer = spare.withLock({ $0.popLast() })
                           ?? AlignedBuffer(capacity: Self.packSize + Self.packedBlockLimit) else {
            throw ConvoyError(.unavailable, "cannot allocate \((Self.packSize + Self.packedBlockLimit) >> 20) MiB "
                + "for a pack of blocks")
        }
        buffer.count = 0
        return OpenPack(id: Self.newPackID(), buffer: buffer)
    }

    /// The pack first, then its index: on a store whose puts are visible at once (S3), an index never names a
    /// pack that is not there yet.
    private func write(_ pack: OpenPack) async throws(ConvoyError) {
        try await repository.store.putDeferred(BackupRepository.packKey(pack.id), aligned: pack.buffer)
        spare.withLock { $0.append(pack.buffer) }
        try await repository.store.putDeferred(BackupRepository.packIndexKey(pack.id),
                                               PackIndexCodec.encode(pack.entries))
        written.withLock { $0.append((pack.id, pack.entries)) }
    }

    static func newPackID() -> String {
        var random = SystemRandomNumberGenerator()
        let high = random.next() as UInt64, low = random.next() as UInt64
        return (withUnsafeBytes(of: high.bigEndian) { Array($0) }
                + withUnsafeBytes(of: low.bigEndian) { Array($0) }).hexString
    }
}
