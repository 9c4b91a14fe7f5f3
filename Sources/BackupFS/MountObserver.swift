/// What a mounted backup reports while it serves, for the daemon's metrics. Called on libfuse's and the fetches'
/// threads, once per read and per block: an implementation must be thread-safe and cheap (atomic counters).
public protocol MountObserver: Sendable {
    /// A read answered: `bytes` sent, or `failed` (EIO).
    func served(bytes: Int, failed: Bool)
    /// A block a read or a prefetch needed: already decompressed in memory (`hit`), or not.
    func lookedUp(hit: Bool)
    /// A block fetch ended (from the disk cache or the store, verified and decompressed), `bytes` of plain data.
    func fetched(bytes: Int, seconds: Double, failed: Bool)
}
