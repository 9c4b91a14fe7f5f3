import Backupstore
import ConvoyCore
import Foundation

/// Encrypted stores' lifecycle for the client API: making a store, unlocking it with a password file, and the
/// wrapped copies of its key (add, list, remove).
struct StoreKeyService: Sendable {
    let stores: StoreFactory

    /// A store URL, or the store of a backup URL.
    static func location(_ destination: String) throws(ConvoyError) -> StoreLocation {
        destination.contains("?") ? try BackupURL.parse(destination).destination : try StoreLocation.parse(destination)
    }

    /// Makes the store at `request.destination`: encrypted with `request.passwordFile`'s passphrase when
    /// `encrypt`, else a plain one (which the first backup would also make).
    func initialize(_ request: ClientAPI.StoreKeyRequest) async throws(ConvoyError) -> ClientAPI.StoreInfo {
        let location = try Self.location(request.destination)
        let store = try stores.open(location, for: .newBackup)
        guard request.encrypt == true else {
            // A passphrase given for a plain store would be silently unused: the user meant to encrypt.
            if request.passwordFile != nil {
                throw .invalid("--password-file goes with --encrypt: a plain store takes no passphrase")
            }
            try await BackupRepository(store: store, hostID: stores.hostID).prepare()
            return ClientAPI.StoreInfo(destination: location.url, encrypted: false)
        }
        guard let file = request.passwordFile else {
            throw .invalid("an encrypted store needs a passphrase: --password-file FILE")
        }
        let repository = try await BackupRepository.createEncrypted(
            in: store, passphrase: try StoreKeys.passphrase(fromFile: file), hostID: stores.hostID)
        if let cipher = repository.cipher { stores.keyring.remember(location, cipher) }
        return ClientAPI.StoreInfo(destination: location.url, encrypted: true)
    }

    func unlock(_ request: ClientAPI.StoreKeyRequest) async throws(ConvoyError) -> ClientAPI.StoreInfo {
        let location = try Self.location(request.destination)
        guard let file = request.passwordFile else { throw .invalid("unlocking a store needs --password-file FILE") }
        let store = try stores.open(location, for: .existingBackups)
        guard try await BackupRepository.isEncrypted(store) == true else {
            throw .invalid("\(location.url) is not an encrypted store, so it takes no password (to make an "
                + "encrypted one: convoy backup init URL --encrypt --password-file FILE, at a new destination)")
        }
        try await stores.keyring.unlock(location, store: store, passwordFile: file)
        return ClientAPI.StoreInfo(destination: location.url, encrypted: true)
    }

    func addKey(_ request: ClientAPI.StoreKeyRequest) async throws(ConvoyError) -> ClientAPI.StoreKey {
        guard let newFile = request.newPasswordFile else {
            throw .invalid("a new key needs the passphrase it opens with: --new-password-file FILE")
        }
        let repository = try await unlocked(request)
        return Self.wire(try await repository.addKey(passphrase: try StoreKeys.passphrase(fromFile: newFile)))
    }

    func keys(_ destination: String) async throws(ConvoyError) -> [ClientAPI.StoreKey] {
        let location = try Self.location(destination)
        let repository = BackupRepository(store: try stores.open(location, for: .existingBackups))
        return try await repository.keys().map(Self.wire)
    }

    /// Removing a key takes the store's key (unlocked before, or by `passwordFile`): knowing its URL is not enough.
    func removeKey(_ id: String, request: ClientAPI.StoreKeyRequest) async throws(ConvoyError) {
        try await unlocked(request).removeKey(id)
    }

    private func unlocked(_ request: ClientAPI.StoreKeyRequest) async throws(ConvoyError) -> BackupRepository {
        let location = try Self.location(request.destination)
        if request.passwordFile != nil { _ = try await unlock(request) }
        let repository = try await stores.repository(location, for: .existingBackups)
        guard repository.cipher != nil else { throw .invalid("\(location.url) is not an encrypted store") }
        return repository
    }

    private static func wire(_ key: StoreKeys.KeyInfo) -> ClientAPI.StoreKey {
        ClientAPI.StoreKey(id: key.id, createdAt: ISO8601DateFormatter().string(from: key.createdAt), host: key.host,
                           kdf: key.kdf)
    }
}
