import ConvoyCore
import Foundation

/// The layout of a convoy backup store on top of an object store:
///
///     convoy-backupstore/format.json                       format name and version (plain JSON)
///     convoy-backupstore/blocks/<h[0:2]>/<h>               data blocks, named by SHA-256 (BlockCodec)
///     convoy-backupstore/volumes/<vol>/volume.json         per-volume record (sealed)
///     convoy-backupstore/volumes/<vol>/backups/<id>        manifests (sealed)
///     convoy-backupstore/leases/<id>.json                  leases for backups and GC (StoreLease)
///
/// Volume paths always end in `/` when listed, so `vol1` never matches `vol10`.
public struct BackupRepository: Sendable {
    public static let formatName = "convoy-backupstore"
    public static let formatVersion = 1
    static let root = "convoy-backupstore/"

    public let store: any ObjectStore

    public init(store: any ObjectStore) {
        self.store = store
    }

    struct FormatFile: Codable {
        var format: String
        var version: Int
    }

    /// Writes the format file of a new store, or checks that an existing store is one this version can read.
    public func prepare() async throws(ConvoyError) {
        let key = Self.root + "format.json"
        if try await store.exists(key) {
            let bytes = try await store.get(key)
            guard let format = try? JSONDecoder().decode(FormatFile.self, from: Data(bytes)),
                  format.format == Self.formatName else {
                throw ConvoyError(.conflict, "\(store.location) holds something that is not a convoy backup store")
            }
            guard format.version <= Self.formatVersion else {
                throw ConvoyError(.conflict, "\(store.location) is a version \(format.version) store; this convoy reads up to version \(Self.formatVersion): upgrade convoy")
            }
            return
        }
        let data = (try? JSONEncoder().encode(FormatFile(format: Self.formatName, version: Self.formatVersion))) ?? Data()
        try await store.put(key, Array(data))
    }

    // MARK: Keys

    static func blockKey(_ hash: String) -> String {
        "\(root)blocks/\(hash.prefix(2))/\(hash)"
    }

    static var blocksPrefix: String { "\(root)blocks/" }

    static func volumePrefix(_ volume: String) -> String { "\(root)volumes/\(volume)/" }

    static func manifestKey(volume: String, backup: String) -> String {
        "\(volumePrefix(volume))backups/\(backup)"
    }

    // MARK: Blocks

    /// The hashes of every block in the store.
    public func blockHashes() async throws(ConvoyError) -> Set<String> {
        var hashes = Set<String>()
        for object in try await store.list(prefix: Self.blocksPrefix) {
            if let slash = object.key.lastIndex(of: "/") { hashes.insert(String(object.key[object.key.index(after: slash)...])) }
        }
        return hashes
    }

    public func hasBlock(_ hash: String) async throws(ConvoyError) -> Bool {
        try await store.exists(Self.blockKey(hash))
    }

    /// Of `hashes`, the blocks the store lacks (asked per block: for stores where that is cheap, or few blocks).
    public func missingBlocks(_ hashes: [String]) async throws(ConvoyError) -> [String] {
        let absent = try await store.absent(hashes.map(Self.blockKey))
        return hashes.filter { absent.contains(Self.blockKey($0)) }
    }

    /// The blocks already in the store, for deduplication: all of them from one listing, or none when asking
    /// per block is cheaper (then `hasBlock` is asked for each new hash).
    func knownBlocksForDeduplication() async throws(ConvoyError) -> Set<String> {
        store.existenceChecksAreCheap ? [] : try await blockHashes()
    }

    /// Blocks become durable at the next `putManifest` (one sync for all of them on a directory store).
    public func putBlock(hash: String, encoded: [UInt8]) async throws(ConvoyError) {
        try await store.putDeferred(Self.blockKey(hash), encoded)
    }

    public func putBlock(hash: String, encoded: ObjectBytes) async throws(ConvoyError) {
        try await store.putDeferred(Self.blockKey(hash), encoded)
    }

    /// Stores a block at once, outside any backup: for a local cache of verified blocks, which has no manifest to
    /// make deferred puts durable.
    public func putBlockNow(hash: String, encoded: [UInt8]) async throws(ConvoyError) {
        try await store.put(Self.blockKey(hash), encoded)
    }

    /// The stored (encoded) object of a block, unverified: for copying between stores, where the receiver checks.
    public func encodedBlock(_ hash: String) async throws(ConvoyError) -> [UInt8] {
        do {
            return try await store.get(Self.blockKey(hash))
        } catch where error.kind == .notFound {
            throw ConvoyError(.notFound, "block \(hash) is missing from \(store.location)")
        }
    }

    /// A block's plain content, verified.
    public func block(_ hash: String) async throws(ConvoyError) -> [UInt8] {
        try BlockCodec.decode(try await encodedBlock(hash), expectedHash: hash)
    }

    /// A block's plain content, verified, for a reader that will not ask the store for it again (a restore, a
    /// backup mount that keeps blocks itself): read around the page cache.
    public func blockReadOnce(_ hash: String) async throws(ConvoyError) -> [UInt8] {
        let encoded = try await encodedBlockReadOnce(hash)
        return try encoded.withUnsafeBytes { bytes throws(ConvoyError) in try BlockCodec.decode(bytes, expectedHash: hash) }
    }

    /// `blockReadOnce` without copying a raw block out of the buffer it was read into.
    public func plainBlockReadOnce(_ hash: String) async throws(ConvoyError) -> PlainBlock {
        try BlockCodec.decodeInPlace(try await encodedBlockReadOnce(hash), expectedHash: hash)
    }

    func encodedBlockReadOnce(_ hash: String) async throws(ConvoyError) -> ObjectBytes {
        do { return try await store.getOnce(Self.blockKey(hash)) } catch where error.kind == .notFound {
            throw ConvoyError(.notFound, "block \(hash) is missing from \(store.location)")
        }
    }

    public func deleteBlocks(_ hashes: [String]) async throws(ConvoyError) {
        try await store.delete(hashes.map(Self.blockKey))
    }

    // MARK: Manifests and volumes

    /// Writes a manifest once every block put before it is durable, so a manifest never names a block that a
    /// crash could take away.
    public func putManifest(_ manifest: Manifest) async throws(ConvoyError) {
        try ObjectName.validate(manifest.id, kind: "backup")
        try ObjectName.validate(manifest.volume)
        try await store.commitDeferred()
        try await store.put(Self.manifestKey(volume: manifest.volume, backup: manifest.id), SealedObject.sealManifest(manifest))
    }

    public func manifest(volume: String, backup: String) async throws(ConvoyError) -> Manifest {
        try ObjectName.validate(volume)
        try ObjectName.validate(backup, kind: "backup")
        let bytes: [UInt8]
        do {
            bytes = try await store.get(Self.manifestKey(volume: volume, backup: backup))
        } catch where error.kind == .notFound {
            throw ConvoyError(.notFound, "no backup \(backup) of volume \(volume) in \(store.location)")
        }
        return try SealedObject.openManifest(bytes, what: "manifest of backup \(backup)")
    }

    public func deleteManifest(volume: String, backup: String) async throws(ConvoyError) {
        try await store.delete([Self.manifestKey(volume: volume, backup: backup)])
    }

    /// Backup ids of one volume, or of every volume, as (volume, id).
    public func backups(volume: String? = nil) async throws(ConvoyError) -> [(volume: String, id: String)] {
        let prefix = volume.map(Self.volumePrefix) ?? "\(Self.root)volumes/"
        var result: [(String, String)] = []
        for object in try await store.list(prefix: prefix) {
            // …/volumes/<vol>/backups/<id>
            let parts = object.key.dropFirst(Self.root.count).split(separator: "/")
            if parts.count == 4, parts[0] == "volumes", parts[2] == "backups" {
                result.append((String(parts[1]), String(parts[3])))
            }
        }
        return result
    }

    public func putVolumeRecord(_ record: VolumeRecordInStore) async throws(ConvoyError) {
        try await store.put(Self.volumePrefix(record.name) + "volume.json", try SealedObject.seal(record))
    }

    /// The per-volume record, or nil when the volume has none in this store.
    public func volumeRecord(_ volume: String) async throws(ConvoyError) -> VolumeRecordInStore? {
        try ObjectName.validate(volume)
        let bytes: [UInt8]
        do { bytes = try await store.get(Self.volumePrefix(volume) + "volume.json") } catch where error.kind == .notFound {
            return nil
        }
        return try SealedObject.open(VolumeRecordInStore.self, bytes, what: "record of volume \(volume)")
    }

    /// Blocks certainly present: those of the volume's last backup in this store. Valid while the caller holds a
    /// backup lease (no collection can run), since a manifest is written only after its blocks are durable.
    func blocksOfLastBackup(_ volume: String) async -> Set<String> {
        guard let record = try? await volumeRecord(volume), let last = record.lastBackup,
              let manifest = try? await manifest(volume: volume, backup: last) else { return [] }
        return manifest.blockHashes
    }
}
