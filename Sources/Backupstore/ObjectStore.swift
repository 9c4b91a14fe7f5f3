import ConvoyCore

/// One object of a listing.
public struct ObjectInfo: Sendable, Equatable {
    public var key: String
    /// nil when the store could not tell it without one more call per object.
    public var size: Int?

    public init(key: String, size: Int?) {
        self.key = key
        self.size = size
    }
}

/// A flat key → bytes store: a directory (`vfs://`) or an S3 bucket (`s3://`). Keys are `/`-separated relative
/// paths. Writes are atomic (a reader sees the old object, the new one, or none, never a part).
///
/// Listing takes a prefix that callers always end with `/` (or pass empty): a bare prefix such as `vol1` would
/// also match `vol10/…`, which is how Convoy's delete of `vol1` removed `vol10`'s backups.
public protocol ObjectStore: Sendable {
    /// Where the store is, for messages (never with credentials).
    var location: String { get }
    func put(_ key: String, _ bytes: [UInt8]) async throws(ConvoyError)
    /// Throws `.notFound` when the object does not exist.
    func get(_ key: String) async throws(ConvoyError) -> [UInt8]
    func exists(_ key: String) async throws(ConvoyError) -> Bool
    /// Deleting a missing key is not an error.
    func delete(_ keys: [String]) async throws(ConvoyError)
    func list(prefix: String) async throws(ConvoyError) -> [ObjectInfo]
    /// Removes what writers that died left half-written (temporary files, unfinished multipart uploads) below
    /// `prefix` (a store's directory may hold other files), when their writer is known dead or they are older
    /// than `age` seconds. Returns how many were removed.
    func removeAbandonedWrites(under prefix: String, olderThan age: Double) async throws(ConvoyError) -> Int

    /// True when `exists` is a local call (a stat): asking per object beats listing the whole store.
    var existenceChecksAreCheap: Bool { get }

    /// Requests worth having in flight at once: a remote store's connections (`--s3-concurrency`).
    var requestConcurrency: Int { get }

    /// True where each request costs more than its bytes (S3: a round trip, and a price per request): every
    /// block is packed, large ones too. A directory store keeps large blocks as files of their own.
    var packsLargeBlocks: Bool { get }

    /// Why nothing may be deleted here, for an append-only destination (`AppendOnlyObjectStore`); nil otherwise.
    var appendOnlyReason: String? { get }

    /// Like `put`, but the object may become visible and durable only at the next `commitDeferred()`: lets a
    /// directory store make thousands of blocks durable with one filesystem sync instead of one each.
    func putDeferred(_ key: String, _ bytes: [UInt8]) async throws(ConvoyError)
    /// Makes every deferred put durable and visible. Call before writing what references them (a manifest).
    func commitDeferred() async throws(ConvoyError)
    /// The keys of `keys` that do not exist, for stores whose existence checks are cheap (one call per key).
    func absent(_ keys: [String]) async throws(ConvoyError) -> Set<String>
    /// `putDeferred` of bytes read with `getOnce`, without copying them into an array first.
    func putDeferred(_ key: String, _ object: ObjectBytes) async throws(ConvoyError)
    /// `putDeferred` of a whole pack from memory aligned for O_DIRECT, which a directory store writes around the
    /// page cache. `buffer` is the caller's again when this returns.
    func putDeferred(_ key: String, aligned buffer: AlignedBuffer) async throws(ConvoyError)

    /// Like `get`, for a reader that will not ask for the object again (a restore, a backup mount that keeps
    /// blocks itself): a directory store reads around the page cache, where caching would only cost CPU and push
    /// out pages worth keeping.
    func getOnce(_ key: String) async throws(ConvoyError) -> ObjectBytes

    /// `length` bytes of an object from `offset` (a block inside a pack); fewer when the object ends first.
    /// Throws `.notFound` when the object does not exist.
    func getRange(_ key: String, offset: Int, length: Int) async throws(ConvoyError) -> [UInt8]
    /// `getRange` for a reader that will not ask for the bytes again (see `getOnce`).
    func getOnceRange(_ key: String, offset: Int, length: Int) async throws(ConvoyError) -> ObjectBytes
}

extension ObjectStore {
    public var existenceChecksAreCheap: Bool { false }
    /// A local disk: a few reads in flight keep it busy.
    public var requestConcurrency: Int { 4 }
    public var packsLargeBlocks: Bool { false }
    public var appendOnlyReason: String? { nil }

    /// Stores whose puts are durable when they return (S3) defer nothing.
    public func putDeferred(_ key: String, _ bytes: [UInt8]) async throws(ConvoyError) { try await put(key, bytes) }
    public func commitDeferred() async throws(ConvoyError) {}

    public func getOnce(_ key: String) async throws(ConvoyError) -> ObjectBytes { ObjectBytes(try await get(key)) }

    public func getOnceRange(_ key: String, offset: Int, length: Int) async throws(ConvoyError) -> ObjectBytes {
        ObjectBytes(try await getRange(key, offset: offset, length: length))
    }

    public func absent(_ keys: [String]) async throws(ConvoyError) -> Set<String> {
        var missing: Set<String> = []
        for key in keys where !(try await exists(key)) { missing.insert(key) }
        return missing
    }

    public func putDeferred(_ key: String, _ object: ObjectBytes) async throws(ConvoyError) {
        try await putDeferred(key, object.withUnsafeBytes { Array($0) })
    }

    public func putDeferred(_ key: String, aligned buffer: AlignedBuffer) async throws(ConvoyError) {
        try await putDeferred(key, Array(buffer.bytes))
    }
}

enum ObjectKey {
    /// Refuses keys that could leave the store's root or be misread: empty components, `.`/`..`, a leading `/`.
    static func validate(_ key: String) throws(ConvoyError) {
        // Byte checks: this runs for every block of a backup, and Foundation's String.contains is slow here.
        guard !key.isEmpty, key.utf8.first != UInt8(ascii: "/"), !key.utf8.contains(0) else {
            throw ConvoyError(.internalFailure, "invalid object key '\(key)'")
        }
        for component in key.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        where component.isEmpty || component.elementsEqual(".".utf8) || component.elementsEqual("..".utf8) {
            throw ConvoyError(.internalFailure, "invalid object key '\(key)'")
        }
    }

    static func validatePrefix(_ prefix: String) throws(ConvoyError) {
        guard prefix.isEmpty || prefix.hasSuffix("/") else {
            throw ConvoyError(.internalFailure, "listing prefix '\(prefix)' must end with '/'")
        }
        if !prefix.isEmpty { try validate(String(prefix.dropLast())) }
    }
}
