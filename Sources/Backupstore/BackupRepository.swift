import ConvoyCore
import Foundation

/// The layout of a convoy backup store on top of an object store:
///
///     convoy-backupstore/format.json                       format name and version (plain JSON)
///     convoy-backupstore/blocks/<h[0:2]>/<h>               data blocks, named by SHA-256 (BlockCodec)
///     convoy-backupstore/packs/<p[0:2]>/<p>                small blocks back to back, each encoded as above
///     convoy-backupstore/packs/<p[0:2]>/<p>.idx            the pack's index: hash, offset, length (PackIndexCodec)
///     convoy-backupstore/volumes/<vol>/volume.json         per-volume record (sealed)
///     convoy-backupstore/volumes/<vol>/backups/<id>        manifests (sealed)
///     convoy-backupstore/leases/<id>.json                  leases for backups and GC (StoreLease)
///     convoy-backupstore/keys/<id>.json                    an encrypted store's wrapped master keys (StoreKeys)
///
/// In an encrypted store (format version 3) blocks are sealed one by one and named by a keyed hash, and every other
/// object but the format file and the keys is sealed whole (`StoreCipher`, `EncryptedObjectStore`).
///
/// Volume paths always end in `/` when listed, so `vol1` never matches `vol10`.
public struct BackupRepository: Sendable {
    public static let formatName = "convoy-backupstore"
    /// Version 2 added packs. A version 1 store is a version 2 store without packs, so writing to one upgrades
    /// its format file (and older convoy then refuses it instead of missing packed blocks).
    public static let formatVersion = 2
    /// Version 3: an encrypted store. Older convoy refuses it ("upgrade convoy") instead of misreading it.
    public static let encryptedFormatVersion = 3
    static let encryptionName = "aes-256-gcm; block ids hmac-sha256; keys scrypt"
    static let root = "convoy-backupstore/"

    /// The store as this repository reads it: for an encrypted store, a view that seals and opens its objects.
    public let store: any ObjectStore
    /// An encrypted store's keys; nil for a plain store.
    public let cipher: StoreCipher?
    /// The host writing through this repository (the daemon's host id), recorded in the volume records and leases
    /// it writes; nil where no daemon writes (tests, a mount's disk cache).
    public let hostID: String?
    /// Shared by copies of this value: which blocks are in packs.
    let packs: PackDirectory

    /// `packsSmallBlocks` false: the store never holds packs (a backup mount's disk cache), so no pack index is
    /// ever listed.
    /// `packIndexCache`: where to keep copies of a remote plain store's pack indexes (ignored for an encrypted one).
    public init(store: any ObjectStore, packsSmallBlocks: Bool = true, hostID: String? = nil,
                cipher: StoreCipher? = nil, packIndexCache: PackIndexCache? = nil) {
        self.store = cipher.map { EncryptedObjectStore(base: store, cipher: $0) } ?? store
        self.cipher = cipher
        self.hostID = hostID
        packs = PackDirectory(enabled: packsSmallBlocks, cache: cipher == nil ? packIndexCache : nil)
    }

    struct FormatFile: Codable {
        var format: String
        var version: Int
        /// What seals an encrypted store (version 3); nil for a plain one.
        var encryption: String?
    }

    static let formatKey = root + "format.json"

    /// Writes the format file of a new store, or checks that an existing store is one this version can read, and
    /// that this repository has the keys it needs (an encrypted store) or none (a plain one).
    public func prepare() async throws(ConvoyError) {
        let wanted = cipher == nil ? Self.formatVersion : Self.encryptedFormatVersion
        if let format = try await Self.format(of: store) {
            if format.encryption != nil, cipher == nil { throw Self.needsKey(store.location) }
            if format.encryption == nil, cipher != nil {
                throw ConvoyError(.conflict, "\(store.location) is not an encrypted store")
            }
            if format.version == wanted { return }
        } else if cipher != nil {
            throw ConvoyError(.notFound, "\(store.location) has no format file: create it with `convoy backup init`")
        }
        try await Self.writeFormat(FormatFile(format: Self.formatName, version: wanted,
                                              encryption: cipher == nil ? nil : Self.encryptionName), to: store)
    }

    static func writeFormat(_ format: FormatFile, to store: any ObjectStore) async throws(ConvoyError) {
        let data = (try? JSONEncoder().encode(format)) ?? Data()
        try await store.put(formatKey, Array(data))
    }

    /// The store's format file, checked to be one this convoy reads; nil when there is none (a new store).
    static func format(of store: any ObjectStore) async throws(ConvoyError) -> FormatFile? {
        let bytes: [UInt8]
        do { bytes = try await store.get(formatKey) } catch where error.kind == .notFound { return nil }
        guard let format = try? JSONDecoder().decode(FormatFile.self, from: Data(bytes)),
              format.format == Self.formatName else {
            throw ConvoyError(.conflict, "\(store.location) holds something that is not a convoy backup store")
        }
        // Version 3 is an encrypted store's, and only it; an encryption this convoy does not know is refused.
        let known = format.version == Self.encryptedFormatVersion
            ? format.encryption == Self.encryptionName : format.encryption == nil
        guard format.version <= Self.encryptedFormatVersion else {
            throw ConvoyError(.conflict, "\(store.location) is a version \(format.version) store; "
                + "this convoy reads up to version \(Self.encryptedFormatVersion): upgrade convoy")
        }
        guard known else {
            throw ConvoyError(.conflict, "\(store.location) is a version \(format.version) store encrypted as "
                + "'\(format.encryption ?? "(not said)")', which this convoy does not know: upgrade convoy")
        }
        return format
    }

    /// Refuses what deletes in an append-only destination before it starts (a collection would otherwise leave
    /// its lease behind, holding off backups until it expires).
    public func refuseIfAppendOnly() throws(ConvoyError) {
        if let reason = store.appendOnlyReason { throw ConvoyError(.invalidArgument, reason) }
    }

    // MARK: Keys

    static func blockKey(_ hash: String) -> String {
        "\(root)blocks/\(hash.prefix(2))/\(hash)"
    }

    static var blocksPrefix: String { "\(root)blocks/" }

    static var packsPrefix: String { "\(root)packs/" }
    static let packIndexSuffix = ".idx"

    static func packKey(_ id: String) -> String { "\(root)packs/\(id.prefix(2))/\(id)" }

    static func packIndexKey(_ id: String) -> String { packKey(id) + packIndexSuffix }

    static func volumePrefix(_ volume: String) -> String { "\(root)volumes/\(volume)/" }

    static func manifestKey(volume: String, backup: String) -> String {
        "\(volumePrefix(volume))backups/\(backup)"
    }

    // MARK: Blocks

    /// The hashes of every block in the store, packed or not (packs listed afresh).
    public func blockHashes() async throws(ConvoyError) -> Set<String> {
        var hashes = Set<String>()
        for object in try await store.list(prefix: Self.blocksPrefix) {
            if let slash = object.key.lastIndex(of: "/") {
                hashes.insert(String(object.key[object.key.index(after: slash)...]))
            }
        }
        for entries in try await packs.current(from: store).packs.values {
            for entry in entries { hashes.insert(entry.hash) }
        }
        return hashes
    }

    public func hasBlock(_ hash: String) async throws(ConvoyError) -> Bool {
        if try await packs.locate(hash, in: store) != nil { return true }
        return try await store.exists(Self.blockKey(hash))
    }

    /// Of `hashes`, the blocks the store lacks (asked per block: for stores where that is cheap, or few blocks).
    public func missingBlocks(_ hashes: [String]) async throws(ConvoyError) -> [String] {
        let packed = try await packs.hashes(in: store)
        let unpacked = hashes.filter { !packed.contains($0) }
        let absent = try await store.absent(unpacked.map(Self.blockKey))
        return unpacked.filter { absent.contains(Self.blockKey($0)) }
    }

    /// The blocks already in the store, for deduplication: all of them from one listing, or none when asking
    /// per block is cheaper (then `hasBlock` is asked for each new hash).
    func knownBlocksForDeduplication() async throws(ConvoyError) -> Set<String> {
        store.existenceChecksAreCheap ? [] : try await blockHashes()
    }

    /// A writer for one job's new blocks; they become durable with `commit` (which `putManifest` does first).
    func blockWriter() -> BlockWriter { BlockWriter(repository: self) }

    /// Makes every block `writer` put durable (one sync for all of them on a directory store).
    func commit(_ writer: BlockWriter) async throws(ConvoyError) {
        let written = try await writer.finish()
        try await store.commitDeferred()
        await packs.add(written)
    }

    /// Stores a block at once as an object of its own, outside any backup: for a local cache of verified blocks,
    /// which has no manifest to make deferred puts durable.
    public func putBlockNow(hash: String, encoded: [UInt8]) async throws(ConvoyError) {
        let stored = cipher == nil ? encoded : try sealed(hash, ObjectBytes(encoded)).withUnsafeBytes { Array($0) }
        try await store.put(Self.blockKey(hash), stored)
    }

    /// The stored (encoded) object of a block, unverified: for copying between stores, where the receiver checks.
    public func encodedBlock(_ hash: String) async throws(ConvoyError) -> [UInt8] {
        try unsealed(hash, try await readEncoded(hash, count: \.count) { key throws(ConvoyError) in
            try await store.get(key)
        } range: { key, offset, length throws(ConvoyError) in
            try await store.getRange(key, offset: offset, length: length)
        })
    }

    /// A block's plain content, verified (against `checksum` when the manifest recorded one, else its name).
    public func block(_ hash: String, checksum: BlockChecksum? = nil) async throws(ConvoyError) -> [UInt8] {
        try BlockCodec.decode(try await encodedBlock(hash), expectedHash: hash, checksum: checksum, cipher: cipher)
    }

    /// A block's plain content, verified, for a reader that will not ask the store for it again (a restore, a
    /// verify, a backup mount that keeps blocks itself): read around the page cache, and a raw block left in the
    /// buffer it was read into. Checked against `checksum` when the manifest recorded one, else against the name.
    public func plainBlockReadOnce(_ hash: String,
                                   checksum: BlockChecksum? = nil) async throws(ConvoyError) -> PlainBlock {
        try BlockCodec.decodeInPlace(try await encodedBlockReadOnce(hash), expectedHash: hash, checksum: checksum,
                                     cipher: cipher)
    }

    func encodedBlockReadOnce(_ hash: String) async throws(ConvoyError) -> ObjectBytes {
        let stored = try await readEncoded(hash, count: \.count) { key throws(ConvoyError) in
            try await store.getOnce(key)
        } range: { key, offset, length throws(ConvoyError) in
            try await store.getOnceRange(key, offset: offset, length: length)
        }
        return try opened(hash, stored)
    }

    /// A block cut from a range of its pack fetched with others (`PackReadAhead`, `PackWindows`): `length` bytes
    /// from `offset` of `range`, which the caller checked it holds, copied out (a block kept in a cache must not
    /// hold the whole range alive), then opened (an encrypted store's) and decoded as `plainBlockReadOnce` does.
    func plainBlock(_ hash: String, at offset: Int, length: Int, of range: ObjectBytes,
                    checksum: BlockChecksum?) throws(ConvoyError) -> PlainBlock {
        let stored = range.withUnsafeBytes { ObjectBytes(Array($0[offset..<(offset + length)])) }
        return try BlockCodec.decodeInPlace(try opened(hash, stored), expectedHash: hash, checksum: checksum,
                                            cipher: cipher)
    }

    private func opened(_ hash: String, _ stored: ObjectBytes) throws(ConvoyError) -> ObjectBytes {
        guard let cipher else { return stored }
        return ObjectBytes(try cipher.openData(stored, context: "block:" + hash,
                                               what: "block \(hash) of \(store.location)"))
    }

    /// Reads block `hash` where it is: a range of its pack, or an object of its own. When it is in neither place
    /// the loaded pack indexes say, they are loaded again once (a collection may have repacked it, or another
    /// writer packed it since they were read).
    private func readEncoded<T>(_ hash: String, count: (T) -> Int,
                                whole: (String) async throws(ConvoyError) -> T,
                                range: (String, Int, Int) async throws(ConvoyError) -> T)
        async throws(ConvoyError) -> T {
        let seen = packs.generation
        for attempt in 0..<2 {
            if let place = try await packs.locate(hash, in: store) {
                do throws(ConvoyError) {
                    let bytes = try await range(Self.packKey(place.pack), place.offset, place.length)
                    guard count(bytes) == place.length else {
                        throw ConvoyError(.driverFailure, "block \(hash) is corrupt: its pack \(place.pack) in "
                            + "\(store.location) ends before it")
                    }
                    return bytes
                } catch where error.kind == .notFound {
                    // The pack is gone: look again below.
                }
            } else {
                do throws(ConvoyError) {
                    let bytes = try await whole(Self.blockKey(hash))
                    return bytes
                } catch where error.kind == .notFound {
                    // Not an object of its own: look again below.
                }
            }
            guard attempt == 0, try await packs.reload(after: seen, from: store) else { break }
        }
        var message = "block \(hash) is missing from \(store.location)"
        let damaged = packs.damagedIndexes
        if !damaged.isEmpty {
            message += " (the indexes of \(damaged.count) pack(s) cannot be read, and it may be in one: "
                + "\(damaged.values.sorted().joined(separator: "; ")))"
        }
        throw ConvoyError(.notFound, message)
    }

    /// Deletes blocks stored as objects of their own.
    public func deleteBlocks(_ hashes: [String]) async throws(ConvoyError) {
        try await store.delete(hashes.map(Self.blockKey))
    }

    /// Deletes packs, the indexes first. Deletes are not ordered on disk, so a crash in between may leave either
    /// half: a pack without an index or an index without its pack is never used to find a block, and the next
    /// collection removes it.
    func deletePacks(_ ids: [String]) async throws(ConvoyError) {
        guard !ids.isEmpty else { return }
        try await store.delete(ids.map(Self.packIndexKey))
        try await store.delete(ids.map(Self.packKey))
    }

    // MARK: Manifests and volumes

    /// Writes a manifest once every block put before it is durable, so a manifest never names a block that a
    /// crash could take away.
    public func putManifest(_ manifest: Manifest) async throws(ConvoyError) {
        try await putManifest(manifest, blocks: nil)
    }

    /// Writes a manifest once the blocks `writer` put (and every deferred put before it) are durable.
    func putManifest(_ manifest: Manifest, blocks writer: BlockWriter?) async throws(ConvoyError) {
        var manifest = manifest
        // Stamped with this host, unless it is a copy of another host's backup.
        if manifest.host == nil { manifest.host = hostID }
        try ObjectName.validate(manifest.id, kind: "backup")
        try ObjectName.validate(manifest.volume)
        if let writer { try await commit(writer) } else { try await store.commitDeferred() }
        try await store.put(Self.manifestKey(volume: manifest.volume, backup: manifest.id),
                            SealedObject.sealManifest(manifest))
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
        try refuseIfAppendOnly()
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

    /// Writes the per-volume record, stamped with this repository's host.
    public func putVolumeRecord(_ record: VolumeRecordInStore) async throws(ConvoyError) {
        var record = record
        record.host = hostID ?? record.host
        try await store.put(Self.volumePrefix(record.name) + "volume.json", try SealedObject.seal(record))
    }

    /// The per-volume record, or nil when the volume has none in this store.
    public func volumeRecord(_ volume: String) async throws(ConvoyError) -> VolumeRecordInStore? {
        try ObjectName.validate(volume)
        let bytes: [UInt8]
        do {
            bytes = try await store.get(Self.volumePrefix(volume) + "volume.json")
        } catch where error.kind == .notFound {
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
