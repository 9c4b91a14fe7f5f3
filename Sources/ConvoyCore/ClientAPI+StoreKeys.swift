/// Encrypted stores through the client API: `POST /v1/stores/init` (a new store, encrypted with `Encrypt`),
/// `POST /v1/stores/unlock`, `GET|POST /v1/stores/keys`, `DELETE /v1/stores/keys/{id}`. Passphrases travel as
/// paths of files the daemon reads, never as text.
extension ClientAPI {
    public struct StoreKeyRequest: Codable, Sendable {
        /// A store URL, or a backup URL in the store.
        public var destination: String
        /// The passphrase that opens (or, for init, will open) the store.
        public var passwordFile: String?
        /// For a key added: the passphrase the new key is wrapped with.
        public var newPasswordFile: String?
        public var encrypt: Bool?

        public init(destination: String, passwordFile: String? = nil, newPasswordFile: String? = nil,
                    encrypt: Bool? = nil) {
            self.destination = destination
            self.passwordFile = passwordFile
            self.newPasswordFile = newPasswordFile
            self.encrypt = encrypt
        }

        enum CodingKeys: String, CodingKey {
            case destination = "Dest", passwordFile = "PasswordFile", newPasswordFile = "NewPasswordFile"
            case encrypt = "Encrypt"
        }
    }

    public struct StoreInfo: Codable, Sendable, Equatable {
        public var destination: String
        public var encrypted: Bool
        public init(destination: String, encrypted: Bool) {
            self.destination = destination
            self.encrypted = encrypted
        }
        enum CodingKeys: String, CodingKey { case destination = "Dest", encrypted = "Encrypted" }
    }

    /// One wrapped copy of an encrypted store's master key.
    public struct StoreKey: Codable, Sendable, Equatable {
        public var id: String
        public var createdAt: String
        public var host: String?
        public var kdf: String
        public init(id: String, createdAt: String, host: String?, kdf: String) {
            self.id = id
            self.createdAt = createdAt
            self.host = host
            self.kdf = kdf
        }
        enum CodingKeys: String, CodingKey { case id = "ID", createdAt = "CreatedAt", host = "Host", kdf = "KDF" }
    }
}
