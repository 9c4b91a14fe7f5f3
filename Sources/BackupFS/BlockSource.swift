import Backupstore
import ConvoyCore
import Synchronization

/// Where blocks come from: the optional disk cache, else the backup store. Every block is verified before it is
/// returned, wherever it was read from: against the checksum the manifest recorded for it, else its hash.
final class BlockSource: Sendable {
    let repository: BackupRepository
    /// Encoded blocks already fetched, in a directory store of their own (same layout as a backup store).
    let diskCache: BackupRepository?
    /// The tree's packed blocks, fetched a window of their pack at a time; nil with a disk cache, which keeps
    /// each block fetched as it is (`load`).
    let windows: PackWindows?
    let fetchDelay: Double
    let log: @Sendable (String) -> Void
    private let fetched = Atomic<UInt64>(0)

    init(repository: BackupRepository, diskCacheDirectory: String?, windows: PackWindows?, fetchDelay: Double,
         log: @escaping @Sendable (String) -> Void) throws(ConvoyError) {
        self.repository = repository
        self.windows = diskCacheDirectory == nil ? windows : nil
        self.diskCache = try diskCacheDirectory.map { directory throws(ConvoyError) in
            // Sealed like its store when that is encrypted: what a mount fetched stays encrypted on disk.
            BackupRepository(store: try FileObjectStore(root: directory), packsSmallBlocks: false,
                             cipher: repository.cipher)
        }
        self.fetchDelay = fetchDelay
        self.log = log
    }

    /// Plain bytes of the verified blocks read from the backup store (disk-cache hits excluded).
    var bytesFetched: UInt64 { fetched.load(ordering: .relaxed) }

    func load(_ hash: String, checksum: BlockChecksum?) async -> Result<PlainBlock, ConvoyError> {
        if fetchDelay > 0 { try? await Task.sleep(for: .seconds(fetchDelay)) }
        if let diskCache {
            do throws(ConvoyError) {
                return .success(PlainBlock(try await diskCache.block(hash, checksum: checksum)))
            } catch where error.kind == .notFound {
                // Not cached yet.
            } catch {
                log("the disk cache's copy of \(error.message); fetching it again from \(repository.store.location)")
            }
        }
        do throws(ConvoyError) {
            guard let diskCache else {
                let plain = try await repository.plainBlockReadOnce(hash, checksum: checksum)
                fetched.add(UInt64(plain.count), ordering: .relaxed)
                return .success(plain)
            }
            let encoded = try await repository.encodedBlock(hash)
            let plain = try BlockCodec.decode(encoded, expectedHash: hash, checksum: checksum,
                                              cipher: repository.cipher)
            fetched.add(UInt64(plain.count), ordering: .relaxed)
            do throws(ConvoyError) { try await diskCache.putBlockNow(hash: hash, encoded: encoded) } catch {
                log("cannot keep block \(hash) in the disk cache: \(error.message)")
            }
            return .success(PlainBlock(plain))
        } catch {
            return .failure(error)
        }
    }

    /// The blocks of the tree worth fetching with `chunk` (its pack window's), to be claimed before `load(_:each:)`.
    func companions(of chunk: Chunk) async -> [PackWindows.Block] {
        await windows?.companions(of: chunk.hash) ?? []
    }

    /// Several blocks of one pack window with one read (each verified), `each` called in their order; a single
    /// block, or any block without a window, loads as `load(_:checksum:)` does.
    func load(_ blocks: [PackWindows.Block],
              each: (Int, Result<PlainBlock, ConvoyError>) -> Void) async {
        guard blocks.count > 1, let windows else {
            for (index, block) in blocks.enumerated() { each(index, await load(block.hash, checksum: block.checksum)) }
            return
        }
        if fetchDelay > 0 { try? await Task.sleep(for: .seconds(fetchDelay)) }
        await windows.read(blocks) { index, outcome in
            if case .success(let plain) = outcome { fetched.add(UInt64(plain.count), ordering: .relaxed) }
            each(index, outcome)
        }
    }

    /// Puts block `hash` in the disk cache (fetched and verified) unless it is there already; runs on the caller's
    /// executor, so background work can do this at its own priority. Returns whether it fetched the block.
    func keepOnDisk(_ hash: String, checksum: BlockChecksum?) async throws(ConvoyError) -> Bool {
        guard let diskCache else {
            throw ConvoyError(.internalFailure, "this backup mount has no disk cache to keep blocks in")
        }
        if try await diskCache.hasBlock(hash) { return false }
        let encoded = try await repository.encodedBlock(hash)
        let plain = try BlockCodec.decode(encoded, expectedHash: hash, checksum: checksum, cipher: repository.cipher)
        fetched.add(UInt64(plain.count), ordering: .relaxed)
        try await diskCache.putBlockNow(hash: hash, encoded: encoded)
        return true
    }
}
