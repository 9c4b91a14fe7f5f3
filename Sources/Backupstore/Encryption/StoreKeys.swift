import ConvoyCore
import Crypto
import _CryptoExtras
import Foundation

/// The wrapped copies of an encrypted store's master key, one object each under `keys/`: the master key sealed
/// with a key derived from a passphrase by scrypt (parameters stored beside it). Several copies open the same
/// store, so a passphrase changes by adding one and removing the other, without rewriting any data.
public enum StoreKeys {
    static var prefix: String { BackupRepository.root + "keys/" }
    static func key(_ id: String) -> String { prefix + id + ".json" }

    /// One wrapped copy as stored (plain JSON: it is what opens the store).
    struct KeyFile: Codable {
        var id: String
        var createdAt: Date
        var host: String?
        var kdf: String
        /// log2 of scrypt's N, its r and p.
        var logN: Int
        var r: Int
        var p: Int
        var salt: Data
        /// The master key sealed by AES-256-GCM with the derived key, authenticated with the key's id.
        var sealedMasterKey: Data
    }

    /// What `convoy backup key list` shows of a copy.
    public struct KeyInfo: Sendable, Codable, Equatable {
        public var id: String
        public var createdAt: Date
        public var host: String?
        public var kdf: String
    }

    /// scrypt N = 2^15, r = 8, p = 1: 32 MiB and about a tenth of a second per try, as restic and the scrypt
    /// paper's interactive setting.
    static let logN = 15, r = 8, p = 1

    /// Creates the first key of a new encrypted store; returns the new master key's cipher. Wrapped copies left by
    /// an earlier attempt that died before writing the format file are removed first.
    static func create(in store: any ObjectStore, passphrase: [UInt8], host: String?) async throws(ConvoyError)
        -> StoreCipher {
        try await store.delete(try await store.list(prefix: prefix).map(\.key))
        let cipher = StoreCipher.generate()
        _ = try await add(to: store, cipher: cipher, passphrase: passphrase, host: host)
        return cipher
    }

    /// Wraps `cipher`'s master key with `passphrase` as one more copy.
    static func add(to store: any ObjectStore, cipher: StoreCipher, passphrase: [UInt8],
                    host: String?) async throws(ConvoyError) -> KeyInfo {
        try checkPassphrase(passphrase)
        let id = BlockWriter.newPackID().prefix(16).description
        let salt = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let wrapping = try derive(passphrase, salt: salt, logN: logN, r: r, p: p)
        let master = cipher.masterKey.withUnsafeBytes { Array($0) }
        let sealed: Data
        do {
            guard let combined = try AES.GCM.seal(master, using: wrapping,
                                                  authenticating: Array("convoy key \(id)".utf8)).combined else {
                throw ConvoyError(.internalFailure, "AES-GCM gave no combined form")
            }
            sealed = combined
        } catch {
            throw ConvoyError(.internalFailure, "cannot wrap the store's key: \(error)")
        }
        let file = KeyFile(id: id, createdAt: Date(), host: host, kdf: "scrypt", logN: logN, r: r, p: p,
                           salt: Data(salt), sealedMasterKey: sealed)
        let data: Data
        do { data = try JSONEncoder().encode(file) } catch {
            throw ConvoyError(.internalFailure, "cannot encode key \(id): \(error)")
        }
        try await store.put(key(id), Array(data))
        return info(file)
    }

    /// The master key, from the first copy `passphrase` opens.
    static func unlock(_ store: any ObjectStore, passphrase: [UInt8]) async throws(ConvoyError)
        -> (cipher: StoreCipher, keyID: String) {
        let files = try await keyFiles(store)
        guard !files.isEmpty else {
            throw ConvoyError(.notFound, "\(store.location) is encrypted but holds no key: it cannot be read")
        }
        for file in files {
            guard let wrapping = try? derive(passphrase, salt: Array(file.salt), logN: file.logN, r: file.r,
                                             p: file.p),
                  let box = try? AES.GCM.SealedBox(combined: file.sealedMasterKey),
                  let master = try? AES.GCM.open(box, using: wrapping,
                                                 authenticating: Array("convoy key \(file.id)".utf8)),
                  master.count == 32 else { continue }
            return (StoreCipher(masterKey: SymmetricKey(data: master)), file.id)
        }
        throw ConvoyError(.invalidArgument, "the passphrase opens none of the \(files.count) key(s) of "
            + "\(store.location): wrong password file?")
    }

    public static func list(_ store: any ObjectStore) async throws(ConvoyError) -> [KeyInfo] {
        try await keyFiles(store).map(info).sorted { $0.createdAt < $1.createdAt }
    }

    /// Removes copy `id`; never the last one (the store would be unreadable for good).
    static func remove(_ id: String, from store: any ObjectStore) async throws(ConvoyError) {
        let files = try await keyFiles(store)
        guard files.contains(where: { $0.id == id }) else {
            throw ConvoyError(.notFound, "\(store.location) has no key \(id) (see `convoy backup key list`)")
        }
        guard files.count > 1 else {
            throw ConvoyError(.conflict, "key \(id) is the last key of \(store.location): removing it would make "
                + "every backup in it unreadable; add another key first")
        }
        try await store.delete([key(id)])
    }

    private static func keyFiles(_ store: any ObjectStore) async throws(ConvoyError) -> [KeyFile] {
        var files: [KeyFile] = []
        for object in try await store.list(prefix: prefix) where object.key.hasSuffix(".json") {
            let bytes = try await store.get(object.key)
            guard let file = try? JSONDecoder().decode(KeyFile.self, from: Data(bytes)) else {
                throw ConvoyError(.driverFailure, "key \(object.key) of \(store.location) is damaged")
            }
            files.append(file)
        }
        return files
    }

    private static func info(_ file: KeyFile) -> KeyInfo {
        KeyInfo(id: file.id, createdAt: file.createdAt, host: file.host,
                kdf: "\(file.kdf) N=2^\(file.logN) r=\(file.r) p=\(file.p)")
    }

    private static func checkPassphrase(_ passphrase: [UInt8]) throws(ConvoyError) {
        guard passphrase.count >= 8 else {
            throw ConvoyError(.invalidArgument, "a store's passphrase must be at least 8 bytes long")
        }
    }

    /// scrypt needs 128·r·N·p bytes: at most 256 MiB (8× what convoy writes), so a crafted key file cannot make
    /// every reader spend gigabytes or minutes.
    static let maxScryptMemory = 256 << 20

    static func derive(_ passphrase: [UInt8], salt: [UInt8], logN: Int, r: Int,
                               p: Int) throws(ConvoyError) -> SymmetricKey {
        guard (10...20).contains(logN), (1...32).contains(r), (1...16).contains(p), salt.count >= 16,
              128 * r * (1 << logN) * p <= maxScryptMemory else {
            throw ConvoyError(.driverFailure, "a key's scrypt parameters are out of bounds")
        }
        do {
            return try KDF.Scrypt.deriveKey(from: passphrase, salt: salt, outputByteCount: 32, rounds: 1 << logN,
                                            blockSize: r, parallelism: p)
        } catch {
            throw ConvoyError(.internalFailure, "scrypt failed: \(error)")
        }
    }

    /// A password file's passphrase: its bytes, one trailing newline dropped.
    public static func passphrase(fromFile path: String) throws(ConvoyError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConvoyError(.invalidArgument, "cannot read password file \(path)")
        }
        var bytes = Array(data)
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        guard !bytes.isEmpty else { throw ConvoyError(.invalidArgument, "password file \(path) is empty") }
        return bytes
    }
}
