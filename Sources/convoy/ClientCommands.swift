import ArgumentParser
import ConvoyClient
import ConvoyCore

/// Runs a client call, printing a ConvoyError to stderr with exit code 1.
func runClient(_ body: () throws(ConvoyError) -> Void) throws {
    do {
        try body()
    } catch {
        Output.error(error.message)
        throw ExitCode.failure
    }
}

struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a volume.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The volume's name (generated as volume-<16 hex> when absent).") var name: String?
    @Option(help: "The driver (default: the daemon's first).") var driver: String?
    @Option(help: "Size: bytes or <n>[kmgt], powers of 1024.") var size: String?
    @Option(name: .customLong("opt"), help: "A driver option KEY=VALUE (repeatable).") var opts: [String] = []
    @Option(help: "Restore the new volume from this backup URL.") var backup: String?
    @Flag(help: "With --backup: usable at once, data served from the backup while it is copied in (`convoy hydrate`).")
    var lazy = false
    @OptionGroup var job: JobOptions
    @OptionGroup var password: StorePassword

    func validate() throws {
        if lazy && backup == nil { throw ValidationError("--lazy needs --backup URL") }
    }

    func run() throws {
        try runClient { () throws(ConvoyError) in
            var options: [String: String] = [:]
            for pair in opts {
                guard let equals = pair.firstIndex(of: "=") else { throw .invalid("--opt: '\(pair)' is not KEY=VALUE") }
                options[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
            if let name { try ObjectName.validate(name) }
            let api = ConvoyAPIClient(socketPath: client.socket)
            if let backup { try password.unlock(api, backup) }
            let request = ClientAPI.CreateVolumeRequest(
                name: name, driver: driver, size: size, options: options.isEmpty ? nil : options, backup: backup,
                lazy: lazy ? true : nil)
            if backup != nil && !lazy {
                let done = try JobFollower(api: api, json: job.json).follow(try api.restoreVolume(request))
                if job.json { return }
                Output.volume(try api.inspectVolume(done.result?["Volume"] ?? ""), format: client.format)
                return
            }
            Output.volume(try api.createVolume(request), format: client.format)
        }
    }
}

struct DeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete volumes and their data.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The volumes to delete.") var names: [String]

    func validate() throws {
        if names.isEmpty { throw ValidationError("name at least one volume") }
    }

    func run() throws {
        let api = ConvoyAPIClient(socketPath: client.socket)
        var failed = false
        for name in names {
            do {
                try api.deleteVolume(name)
            } catch {
                Output.error(error.message)
                failed = true
            }
        }
        if failed { throw ExitCode.failure }
    }
}

struct MountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount", abstract: "Mount a volume for use outside Docker (holds one reference until umount).")
    @OptionGroup var client: ClientOptions
    @Argument var name: String

    func run() throws {
        try runClient { () throws(ConvoyError) in
            print(try ConvoyAPIClient(socketPath: client.socket).mountVolume(name))
        }
    }
}

struct UmountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "umount", abstract: "Release the reference taken by `convoy mount`.")
    @OptionGroup var client: ClientOptions
    @Argument var name: String

    func run() throws {
        try runClient { () throws(ConvoyError) in
            try ConvoyAPIClient(socketPath: client.socket).unmountVolume(name)
        }
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List volumes.")
    @OptionGroup var client: ClientOptions

    func run() throws {
        try runClient { () throws(ConvoyError) in
            Output.volumes(try ConvoyAPIClient(socketPath: client.socket).listVolumes(), format: client.format)
        }
    }
}

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show one volume.")
    @OptionGroup var client: ClientOptions
    @Argument var name: String

    func run() throws {
        try runClient { () throws(ConvoyError) in
            Output.volume(try ConvoyAPIClient(socketPath: client.socket).inspectVolume(name), format: client.format)
        }
    }
}

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Show the daemon's configuration and drivers.")
    @OptionGroup var client: ClientOptions

    func run() throws {
        try runClient { () throws(ConvoyError) in
            Output.info(try ConvoyAPIClient(socketPath: client.socket).info(), format: client.format)
        }
    }
}
