import ArgumentParser
import ConvoyClient
import ConvoyCore
import Foundation

/// `--password-file` for commands that touch a store: the daemon reads the file itself and keeps the store's
/// key in memory (the passphrase never travels in a request).
struct StorePassword: ParsableArguments {
    @Option(help: "A file holding the passphrase of an encrypted store (the daemon reads it).")
    var passwordFile: String?

    /// Unlocks `destination` (a store or backup URL) first when a password file was given.
    func unlock(_ api: ConvoyAPIClient, _ destination: String) throws(ConvoyError) {
        guard let passwordFile else { return }
        _ = try api.unlockStore(ClientAPI.StoreKeyRequest(destination: destination,
                                                          passwordFile: Self.absolute(passwordFile)))
    }

    /// The daemon's working directory is not the client's.
    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}

extension BackupCommand {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a backup store; with --encrypt, an encrypted one (AES-256-GCM, keyed block ids).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "A new destination: vfs:///path or s3://bucket@region/path.") var url: String
        @Flag(help: "Encrypt everything stored; the passphrase comes from --password-file.") var encrypt = false
        @OptionGroup var password: StorePassword

        func run() throws {
            try runClient { () throws(ConvoyError) in
                Output.json(try ConvoyAPIClient(socketPath: client.socket).initStore(ClientAPI.StoreKeyRequest(
                    destination: url, passwordFile: password.passwordFile.map(StorePassword.absolute),
                    encrypt: encrypt)))
            }
        }
    }

    struct Key: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The keys of an encrypted store: each opens it with its own passphrase.",
            subcommands: [Add.self, List.self, Remove.self])

        struct Add: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Add a key (a new passphrase for the store).")
            @OptionGroup var client: ClientOptions
            @Argument var url: String
            @OptionGroup var password: StorePassword
            @Option(help: "A file holding the new key's passphrase.") var newPasswordFile: String

            func run() throws {
                try runClient { () throws(ConvoyError) in
                    Output.json(try ConvoyAPIClient(socketPath: client.socket).addStoreKey(ClientAPI.StoreKeyRequest(
                        destination: url, passwordFile: password.passwordFile.map(StorePassword.absolute),
                        newPasswordFile: StorePassword.absolute(newPasswordFile))))
                }
            }
        }

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List the keys of an encrypted store.")
            @OptionGroup var client: ClientOptions
            @Argument var url: String

            func run() throws {
                try runClient { () throws(ConvoyError) in
                    Output.json(try ConvoyAPIClient(socketPath: client.socket).storeKeys(destination: url))
                }
            }
        }

        struct Remove: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Remove a key (never the last one).")
            @OptionGroup var client: ClientOptions
            @Argument var url: String
            @Argument(help: "The key's id (see `backup key list`).") var id: String
            @OptionGroup var password: StorePassword

            func run() throws {
                try runClient { () throws(ConvoyError) in
                    let api = ConvoyAPIClient(socketPath: client.socket)
                    try password.unlock(api, url)
                    try api.removeStoreKey(id, destination: url)
                    Output.json(["Removed": id])
                }
            }
        }
    }
}
