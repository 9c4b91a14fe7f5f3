import Backupstore
import ConvoyCore
import Synchronization

/// The keys of encrypted stores this daemon has opened, in memory only: unlocked by a client's password file
/// (`POST /v1/stores/unlock`, which the CLI sends for `--password-file`) or by the daemon's own
/// `--store-password-file URL=FILE` (what scheduled policies and lazy volumes use after a restart). The daemon
/// reads password files itself: a passphrase never travels in a request, a job record or a log line. A key stays
/// unlocked until the daemon stops.
public final class StoreKeyring: Sendable {
    /// Store URL → password file, from the daemon's flags.
    private let passwordFiles: [String: String]
    private let unlocked = Mutex<[String: StoreCipher]>([:])
    /// Stores seen to be plain: a plain store never becomes encrypted (`backup init` refuses an existing store).
    private let plain = Mutex<Set<String>>([])

    public init(passwordFiles: [String: String] = [:]) {
        self.passwordFiles = passwordFiles
    }

    /// `URL=FILE` pairs (`--store-password-file`), keyed by the URL in its canonical form.
    public static func parse(_ pairs: [String]) throws(ConvoyError) -> [String: String] {
        var files: [String: String] = [:]
        for pair in pairs {
            guard let equals = pair.lastIndex(of: "="), equals != pair.startIndex,
                  pair.index(after: equals) != pair.endIndex else {
                throw ConvoyError.invalid("--store-password-file: '\(pair)' is not URL=FILE")
            }
            let location = try StoreLocation.parse(String(pair[..<equals]))
            let file = String(pair[pair.index(after: equals)...])
            guard file.hasPrefix("/") else {
                throw ConvoyError.invalid("--store-password-file: \(file) must be an absolute path")
            }
            files[location.url] = file
        }
        return files
    }

    /// The keys `store` (at `location`) needs: nil for a plain store.
    func cipher(for location: StoreLocation, store: any ObjectStore) async throws(ConvoyError) -> StoreCipher? {
        if let cipher = unlocked.withLock({ $0[location.url] }) { return cipher }
        if plain.withLock({ $0.contains(location.url) }) { return nil }
        switch try await BackupRepository.isEncrypted(store) {
        case true: break
        case false:
            _ = plain.withLock { $0.insert(location.url) }
            return nil
        case nil:
            return nil  // A store not made yet is not remembered: it may be made encrypted.
        }
        guard let file = passwordFiles[location.url] else {
            throw ConvoyError(.invalidArgument, "\(location.url) is an encrypted store: give its passphrase with "
                + "--password-file FILE, or start the daemon with --store-password-file \(location.url)=FILE")
        }
        return try await unlock(location, store: store, passwordFile: file)
    }

    /// Opens the store with the passphrase in `passwordFile` and keeps its key.
    @discardableResult
    func unlock(_ location: StoreLocation, store: any ObjectStore,
                passwordFile: String) async throws(ConvoyError) -> StoreCipher {
        let passphrase = try StoreKeys.passphrase(fromFile: passwordFile)
        let repository = try await BackupRepository.unlock(store, passphrase: passphrase, hostID: nil)
        guard let cipher = repository.cipher else {
            throw ConvoyError(.internalFailure, "an unlocked store has no key")
        }
        remember(location, cipher)
        return cipher
    }

    func remember(_ location: StoreLocation, _ cipher: StoreCipher) {
        unlocked.withLock { $0[location.url] = cipher }
        _ = plain.withLock { $0.remove(location.url) }
    }

    /// Whether the daemon can open `location` by itself after a restart (a policy needs that).
    func hasPasswordFile(for location: StoreLocation) -> Bool { passwordFiles[location.url] != nil }
}
