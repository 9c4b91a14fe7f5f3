import ConvoyCore

/// A destination this host only adds to (`convoy daemon --append-only URL`): nothing is ever deleted through it,
/// so credentials stolen from the host, given no delete right, cannot destroy history. Forget, delete, collection
/// and key removal are refused with what to do (run them from a trusted host); a lease cannot be removed when its
/// holder ends and lapses by its expiry instead; what a dead writer left half-written is left for a trusted
/// collection. Backups, leases and volume records are still written: the last two are rewritten in place, which
/// S3 versioning with Object Lock keeps as new versions (docs/design.md, "Append-only destinations").
public struct AppendOnlyObjectStore: ObjectStore {
    let base: any ObjectStore

    public init(base: any ObjectStore) {
        self.base = base
    }

    public var location: String { base.location }
    public var existenceChecksAreCheap: Bool { base.existenceChecksAreCheap }
    public var requestConcurrency: Int { base.requestConcurrency }
    public var packsLargeBlocks: Bool { base.packsLargeBlocks }

    public var appendOnlyReason: String? {
        "\(base.location) is append-only on this host (--append-only): backups are only added there; forget, "
            + "delete and collect it from a trusted host that may delete in it"
    }

    public func delete(_ keys: [String]) async throws(ConvoyError) {
        guard keys.isEmpty else { throw ConvoyError(.invalidArgument, appendOnlyReason ?? "") }
    }

    public func removeAbandonedWrites(under prefix: String, olderThan age: Double) async throws(ConvoyError) -> Int {
        0
    }

    public func put(_ key: String, _ bytes: [UInt8]) async throws(ConvoyError) { try await base.put(key, bytes) }
    public func get(_ key: String) async throws(ConvoyError) -> [UInt8] { try await base.get(key) }
    public func exists(_ key: String) async throws(ConvoyError) -> Bool { try await base.exists(key) }
    public func list(prefix: String) async throws(ConvoyError) -> [ObjectInfo] { try await base.list(prefix: prefix) }

    public func putDeferred(_ key: String, _ bytes: [UInt8]) async throws(ConvoyError) {
        try await base.putDeferred(key, bytes)
    }

    public func commitDeferred() async throws(ConvoyError) { try await base.commitDeferred() }
    public func absent(_ keys: [String]) async throws(ConvoyError) -> Set<String> { try await base.absent(keys) }

    public func putDeferred(_ key: String, _ object: ObjectBytes) async throws(ConvoyError) {
        try await base.putDeferred(key, object)
    }

    public func putDeferred(_ key: String, aligned buffer: AlignedBuffer) async throws(ConvoyError) {
        try await base.putDeferred(key, aligned: buffer)
    }

    public func getOnce(_ key: String) async throws(ConvoyError) -> ObjectBytes { try await base.getOnce(key) }

    public func getRange(_ key: String, offset: Int, length: Int) async throws(ConvoyError) -> [UInt8] {
        try await base.getRange(key, offset: offset, length: length)
    }

    public func getOnceRange(_ key: String, offset: Int, length: Int) async throws(ConvoyError) -> ObjectBytes {
        try await base.getOnceRange(key, offset: offset, length: length)
    }
}
