import ConvoyCore

/// An encrypted store's objects as its repository sees them: every object sealed whole under its key (manifests,
/// volume records, pack indexes, leases), except the two kinds that must stay as they are:
/// - data: loose blocks and packs, which the repository seals block by block (a block in a pack is read by
///   range, so the pack cannot be one sealed object);
/// - what opens the store: `format.json` and the wrapped keys under `keys/`.
/// Listing, existence and deletion pass through: object names, sizes, counts and times stay visible (documented in
/// docs/backups.md).
struct EncryptedObjectStore: ObjectStore {
    let base: any ObjectStore
    let cipher: StoreCipher

    var location: String { base.location }
    var existenceChecksAreCheap: Bool { base.existenceChecksAreCheap }
    var requestConcurrency: Int { base.requestConcurrency }
    var packsLargeBlocks: Bool { base.packsLargeBlocks }
    var appendOnlyReason: String? { base.appendOnlyReason }

    /// Whether `key` is sealed whole here (see the type's comment).
    static func sealsWhole(_ key: String) -> Bool {
        let root = BackupRepository.root
        guard key.hasPrefix(root) else { return true }
        let rest = key.dropFirst(root.count)
        if rest == "format.json" || rest.hasPrefix("keys/") || rest.hasPrefix("blocks/") { return false }
        if rest.hasPrefix("packs/") { return rest.hasSuffix(BackupRepository.packIndexSuffix) }
        return true
    }

    private func sealed(_ key: String, _ bytes: [UInt8]) throws(ConvoyError) -> [UInt8] {
        Self.sealsWhole(key) ? try cipher.seal(bytes, context: "object:" + key) : bytes
    }

    private func opened(_ key: String, _ bytes: [UInt8]) throws(ConvoyError) -> [UInt8] {
        guard Self.sealsWhole(key) else { return bytes }
        return try cipher.open(ObjectBytes(bytes), context: "object:" + key, what: "object \(key) of \(base.location)")
    }

    func put(_ key: String, _ bytes: [UInt8]) async throws(ConvoyError) {
        try await base.put(key, try sealed(key, bytes))
    }

    func get(_ key: String) async throws(ConvoyError) -> [UInt8] {
        try opened(key, try await base.get(key))
    }

    func exists(_ key: String) async throws(ConvoyError) -> Bool { try await base.exists(key) }
    func delete(_ keys: [String]) async throws(ConvoyError) { try await base.delete(keys) }
    func list(prefix: String) async throws(ConvoyError) -> [ObjectInfo] { try await base.list(prefix: prefix) }

    func removeAbandonedWrites(under prefix: String, olderThan age: Double) async throws(ConvoyError) -> Int {
        try await base.removeAbandonedWrites(under: prefix, olderThan: age)
    }

    func putDeferred(_ key: String, _ bytes: [UInt8]) async throws(ConvoyError) {
        try await base.putDeferred(key, try sealed(key, bytes))
    }

    func commitDeferred() async throws(ConvoyError) { try await base.commitDeferred() }
    func absent(_ keys: [String]) async throws(ConvoyError) -> Set<String> { try await base.absent(keys) }

    func putDeferred(_ key: String, _ object: ObjectBytes) async throws(ConvoyError) {
        guard Self.sealsWhole(key) else { return try await base.putDeferred(key, object) }
        try await base.putDeferred(key, try sealed(key, object.withUnsafeBytes { Array($0) }))
    }

    func putDeferred(_ key: String, aligned buffer: AlignedBuffer) async throws(ConvoyError) {
        guard Self.sealsWhole(key) else { return try await base.putDeferred(key, aligned: buffer) }
        try await base.putDeferred(key, try sealed(key, Array(buffer.bytes)))
    }

    func getOnce(_ key: String) async throws(ConvoyError) -> ObjectBytes {
        guard Self.sealsWhole(key) else { return try await base.getOnce(key) }
        return ObjectBytes(try opened(key, try await base.get(key)))
    }

    /// A range of a sealed object is a range of its opened whole (nothing reads those by range today).
    func getRange(_ key: String, offset: Int, length: Int) async throws(ConvoyError) -> [UInt8] {
        guard Self.sealsWhole(key) else { return try await base.getRange(key, offset: offset, length: length) }
        let whole = try await get(key)
        let start = min(max(0, offset), whole.count)
        return Array(whole[start..<min(whole.count, start + max(0, length))])
    }

    func getOnceRange(_ key: String, offset: Int, length: Int) async throws(ConvoyError) -> ObjectBytes {
        guard Self.sealsWhole(key) else {
            return try await base.getOnceRange(key, offset: offset, length: length)
        }
        return ObjectBytes(try await getRange(key, offset: offset, length: length))
    }
}
