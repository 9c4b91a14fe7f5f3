import Backupstore
import ConvoyCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What the FUSE callbacks reach through libfuse's `private_data`: the indexed tree, the block cache and reader,
/// and the log. Immutable apart from the cache, so the callbacks may run on any number of libfuse threads.
final class BackupFilesystem: Sendable {
    let tree: BackupTree
    let cache: BlockCache
    let reader: FileReader
    /// What holes are sent from.
    let zeros = ZeroBytes(count: Int(FuseOperations.maxRead))
    /// "backup <id> of volume <name>", for log lines.
    let label: String
    let log: @Sendable (String) -> Void
    let observer: (any MountObserver)?
    let openFiles = OpenFiles()
    /// Whether the kernel can open files without asking (FUSE_CAP_NO_OPEN_SUPPORT); set at the session's init.
    let kernelOpensFilesAlone = Atomic<Bool>(false)

    init(manifest: Manifest, repository: BackupRepository, options: BackupMountOptions,
         log: @escaping @Sendable (String) -> Void) throws(ConvoyError) {
        tree = try BackupTree(manifest)
        // Windows of at most an eighth of the block memory: one window's companions must not push out of it the
        // blocks being read.
        let windows = PackWindows(repository: repository, entries: tree.entries,
                                  size: min(PackWindows.defaultSize, max(1, options.cacheBytes / 8)))
        let source = try BlockSource(repository: repository, diskCacheDirectory: options.diskCacheDirectory,
                                     windows: windows,
                                     fetchDelay: options.fetchDelay, log: log)
        let readAheadBlocks = max(0, options.readAheadBlocks)
        cache = BlockCache(memory: options.memory ?? BlockMemory(capacity: options.cacheBytes), source: source,
                           prefetchLimit: max(1, 2 * readAheadBlocks), observer: options.observer)
        reader = FileReader(tree: tree, cache: cache, readAheadBlocks: readAheadBlocks,
                            readAheadBytes: max(0, options.cacheBytes / 4))
        label = "backup \(manifest.id) of volume \(manifest.volume)"
        self.log = log
        observer = options.observer
    }

    /// The FUSE `read`: the pieces to send, or EIO once the log has a line naming the file and the block.
    func read(_ file: OpenFile, count: Int, at offset: UInt64) -> Result<[ReadPiece], Errno> {
        do throws(ConvoyError) {
            let pieces = try reader.read(file, count: count, at: offset)
            if let observer { observer.served(bytes: pieces.reduce(0) { $0 + $1.count }, failed: false) }
            return .success(pieces)
        } catch {
            observer?.served(bytes: 0, failed: true)
            log("\(label): cannot read /\(file.path) at offset \(offset): \(error.message)")
            return .failure(Errno(EIO))
        }
    }
}

/// An errno value for a FUSE reply.
struct Errno: Error {
    let code: Int32
    init(_ code: Int32) { self.code = code }
}
