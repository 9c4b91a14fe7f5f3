import ConvoyCore

/// Encrypted stores: making and opening one, its keys, and how blocks are named and sealed in it.
extension BackupRepository {
    /// Whether the store at `store` is encrypted; nil when there is no store there yet (one read of its format file).
    public static func isEncrypted(_ store: any ObjectStore) async throws(ConvoyError) -> Bool? {
        try await format(of: store).map { $0.encryption != nil }
    }

    static func needsKey(_ location: String) -> ConvoyError {
        ConvoyError(.invalidArgument, "\(location) is an encrypted store: give its passphrase with --password-file "
            + "FILE (or start the daemon with --store-password-file URL=FILE)")
    }

    /// Makes a new encrypted store at `store`, its first key wrapped with `passphrase`; returns its repository.
    /// Refused where a store exists already: a plain store cannot be encrypted in place (back it up anew).
    public static func createEncrypted(in store: any ObjectStore, passphrase: [UInt8],
                                       hostID: String?) async throws(ConvoyError) -> BackupRepository {
        let existing = try await format(of: store)
        let volumes = try await store.list(prefix: root + "volumes/")
        if existing != nil || !volumes.isEmpty {
            throw ConvoyError(.conflict, "\(store.location) already holds a backup store; an encrypted store needs "
                + "a destination of its own")
        }
        let cipher = try await StoreKeys.create(in: store, passphrase: passphrase, host: hostID)
        // The format file last: until it is written, the store is not one (and a new init starts over).
        try await writeFormat(FormatFile(format: formatName, version: encryptedFormatVersion,
                                         encryption: encryptionName), to: store)
        return BackupRepository(store: store, hostID: hostID, cipher: cipher)
    }

    /// Opens an encrypted store with a passphrase (a plain store opens with none, and this says so).
    public static func unlock(_ store: any ObjectStore, passphrase: [UInt8],
                              hostID: String?) async throws(ConvoyError) -> BackupRepository {
        guard try await isEncrypted(store) == true else {
            throw ConvoyError(.invalidArgument, "\(store.location) is not encrypted: it needs no password")
        }
        let (cipher, _) = try await StoreKeys.unlock(store, passphrase: passphrase)
        return BackupRepository(store: store, hostID: hostID, cipher: cipher)
    }

    /// The store beneath the encrypting view: where keys are read and written.
    var baseStore: any ObjectStore { (store as? EncryptedObjectStore)?.base ?? store }

    /// Adds a key opening this (unlocked, encrypted) store with `passphrase`.
    public func addKey(passphrase: [UInt8]) async throws(ConvoyError) -> StoreKeys.KeyInfo {
        guard let cipher else { throw ConvoyError(.invalidArgument, "\(store.location) is not encrypted") }
        return try await StoreKeys.add(to: baseStore, cipher: cipher, passphrase: passphrase, host: hostID)
    }

    public func removeKey(_ id: String) async throws(ConvoyError) {
        guard cipher != nil else { throw ConvoyError(.invalidArgument, "\(store.location) is not encrypted") }
        try await StoreKeys.remove(id, from: baseStore)
    }

    public func keys() async throws(ConvoyError) -> [StoreKeys.KeyInfo] { try await StoreKeys.list(baseStore) }

    /// The id of a block of plain content: its SHA-256, keyed in an encrypted store.
    public func blockID(of plain: UnsafeRawBufferPointer) -> String {
        cipher?.blockID(of: plain) ?? BlockCodec.hash(plain)
    }

    /// A stored block as the codec reads it: opened in an encrypted store.
    func unsealed(_ hash: String, _ stored: [UInt8]) throws(ConvoyError) -> [UInt8] {
        guard let cipher else { return stored }
        return try cipher.open(ObjectBytes(stored), context: "block:" + hash,
                               what: "block \(hash) of \(store.location)")
    }

    /// An encoded block as stored: sealed in an encrypted store (read from where it is, left where AES-GCM
    /// wrote it: a block is not copied on its way to a pack).
    func sealed(_ hash: String, _ encoded: ObjectBytes) throws(ConvoyError) -> ObjectBytes {
        guard let cipher else { return encoded }
        return ObjectBytes(try encoded.withUnsafeBytes { (plain: UnsafeRawBufferPointer) throws(ConvoyError) in
            try cipher.sealData(plain, context: "block:" + hash)
        })
    }
}
