import Backupstore
import Synchronization

/// The decompressed blocks every backup mount of the daemon keeps, in one LRU bounded in bytes
/// (`--fuse-cache-size`): the daemon's memory for them has one ceiling however many lazy volumes and browse
/// mounts it serves, and a mount that is read takes memory from those that are not. Blocks are keyed by their
/// store and hash, so two mounts of one store share what they both read.
public final class BlockMemory: Sendable {
    private let lru: Mutex<BlockLRU>

    public init(capacity: Int) {
        lru = Mutex(BlockLRU(capacity: capacity))
    }

    public var capacity: Int { lru.withLock { $0.capacity } }
    /// The most bytes ever held (never above `capacity`).
    public var peakBytes: Int { lru.withLock { $0.peakBytes } }
    public var bytes: Int { lru.withLock { $0.bytes } }

    func get(_ key: String) -> PlainBlock? { lru.withLock { $0.get(key) } }
    func contains(_ key: String) -> Bool { lru.withLock { $0.contains(key) } }
    func insert(_ key: String, _ block: PlainBlock) { lru.withLock { $0.insert(key, block) } }
}
