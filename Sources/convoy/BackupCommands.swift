import ArgumentParser
import ConvoyClient
import ConvoyCore
import Foundation

/// Options of commands that start a daemon job.
struct JobOptions: ParsableArguments {
    @Flag(help: "Print one JSON line per progress update instead of a progress bar.")
    var json = false
}

struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot", abstract: "Point-in-time snapshots of volumes.",
        subcommands: [Create.self, Delete.self, Inspect.self, List.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Snapshot a volume (prints the snapshot's name).")
        @OptionGroup var client: ClientOptions
        @OptionGroup var job: JobOptions
        @Argument var volume: String
        @Option(help: "The snapshot's name (generated as snapshot-<16 hex> when absent).") var name: String?

        func run() throws {
            try runClient { () throws(ConvoyError) in
                let api = ConvoyAPIClient(socketPath: client.socket)
                let done = try JobFollower(api: api, json: job.json)
                    .follow(try api.createSnapshot(volume: volume, name: name))
                if !job.json { print(done.result?["Snapshot"] ?? "") }
                // A busy volume's snapshot is whole but for what changed under it: say so where people look.
                if !job.json, let skipped = done.result?["Skipped"] {
                    FileHandle.standardError.write(Data("warning: \(skipped)\n".utf8))
                }
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a snapshot.")
        @OptionGroup var client: ClientOptions
        @Argument var snapshot: String

        func run() throws {
            try runClient { () throws(ConvoyError) in
                try ConvoyAPIClient(socketPath: client.socket).deleteSnapshot(snapshot)
            }
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a snapshot.")
        @OptionGroup var client: ClientOptions
        @Argument var snapshot: String

        func run() throws {
            try runClient { () throws(ConvoyError) in
                Output.json(try ConvoyAPIClient(socketPath: client.socket).snapshot(snapshot))
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List snapshots, of one volume or all.")
        @OptionGroup var client: ClientOptions
        @Argument var volume: String?

        func run() throws {
            try runClient { () throws(ConvoyError) in
                Output.snapshots(try ConvoyAPIClient(socketPath: client.socket).snapshots(volume: volume),
                                 format: client.format)
            }
        }
    }
}

struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Backups in object stores (vfs:///path, s3://bucket@region/path) and as EBS snapshots (ebs://).",
        subcommands: [Create.self, List.self, Inspect.self, Delete.self, Forget.self, Policy.self, Verify.self,
                      Mount.self, Umount.self, Mounts.self, Init.self, Key.self])

    struct Mount: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a backup read-only at an empty directory (served by the daemon until `backup umount`).")
        @OptionGroup var client: ClientOptions
        @Argument var url: String
        @Argument(help: "An existing empty directory.") var directory: String
        @OptionGroup var password: StorePassword

        func run() throws {
            try runClient { () throws(ConvoyError) in
                let path = StorePassword.absolute(directory)
                let api = ConvoyAPIClient(socketPath: client.socket)
                try password.unlock(api, url)
                Output.json(try api.mountBackup(url: url, path: path))
            }
        }
    }

    struct Umount: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Unmount a backup mounted with `backup mount`.")
        @OptionGroup var client: ClientOptions
        @Argument var directory: String

        func run() throws {
            try runClient { () throws(ConvoyError) in
                let path = directory.hasPrefix("/")
                    ? directory
                    : FileManager.default.currentDirectoryPath + "/" + directory
                try ConvoyAPIClient(socketPath: client.socket).unmountBackup(path: path)
            }
        }
    }

    struct Mounts: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the backups mounted for browsing.")
        @OptionGroup var client: ClientOptions

        func run() throws {
            try runClient { () throws(ConvoyError) in
                let mounts = try ConvoyAPIClient(socketPath: client.socket).backupMounts()
                switch client.format {
                case .json: Output.json(mounts)
                case .table: Output.table(header: ["PATH", "BACKUP", "MOUNTED"],
                                          rows: mounts.map { [$0.path, $0.url, $0.mountedAt] })
                }
            }
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Back up a snapshot, or a file volume straight from its directory (prints the backup URL).")
        @OptionGroup var client: ClientOptions
        @OptionGroup var job: JobOptions
        @Argument(help: "The snapshot to back up (or --volume instead).") var snapshot: String?
        @Option(help: ArgumentHelp("A file volume (vfs, glusterfs) to back up without a snapshot: read once, written "
            + "only to the destination, incremental against its last backup there.", valueName: "volume"))
        var volume: String?
        @Option(help: "Destination: vfs:///path, s3://bucket@region/path, or ebs:// for a snapshot of an ebs volume.")
        var dest: String
        @OptionGroup var password: StorePassword

        func validate() throws {
            guard (snapshot == nil) != (volume == nil) else {
                throw ValidationError("name a snapshot, or a volume with --volume (one of them)")
            }
        }

        func run() throws {
            try runClient { () throws(ConvoyError) in
                let api = ConvoyAPIClient(socketPath: client.socket)
                if !dest.hasPrefix("ebs:") { try password.unlock(api, dest) }
                let started = if let volume {
                    try api.createBackup(volume: volume, destination: dest)
                } else {
                    try api.createBackup(snapshot: snapshot ?? "", destination: dest)
                }
                let done = try JobFollower(api: api, json: job.json).follow(started)
                if !job.json { print(done.result?["URL"] ?? "") }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the backups in a destination.")
        @OptionGroup var client: ClientOptions
        @Argument var dest: String
        @Option(help: "Only this volume's backups.") var volumeName: String?
        @OptionGroup var password: StorePassword

        func run() throws {
            try runClient { () throws(ConvoyError) in
                let api = ConvoyAPIClient(socketPath: client.socket)
                if !dest.hasPrefix("ebs:") { try password.unlock(api, dest) }
                Output.backups(try api.backups(destination: dest, volume: volumeName), format: client.format)
            }
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a backup.")
        @OptionGroup var client: ClientOptions
        @Argument var url: String
        @OptionGroup var password: StorePassword

        func run() throws {
            try runClient { () throws(ConvoyError) in
                let api = ConvoyAPIClient(socketPath: client.socket)
                try password.unlock(api, url)
                Output.json(try api.inspectBackup(url))
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a backup and the blocks only it used.")
        @OptionGroup var client: ClientOptions
        @Argument var url: String
        @OptionGroup var password: StorePassword

        func run() throws {
            try runClient { () throws(ConvoyError) in
                let api = ConvoyAPIClient(socketPath: client.socket)
                try password.unlock(api, url)
                Output.json(try api.deleteBackup(url))
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-read every block of a backup; report each missing or corrupt block (exit 1 if any).",
            discussion: """
                With --all, URL is a destination: every backup's manifest is read and each block it references \
                must be stored; --read-data-subset also reads and re-hashes a share of the blocks (5%: a random \
                twentieth each run; 1/10, 2/10...: a fixed tenth each, covering the store in ten runs; all).
                """)
        @OptionGroup var client: ClientOptions
        @OptionGroup var job: JobOptions
        @Argument(help: "A backup URL, or a destination with --all.") var url: String
        @Flag(help: "Check every backup of the destination URL.") var all = false
        @Option(help: "With --all: read this share of the blocks (5%, 1/10, all).") var readDataSubset: String?
        @OptionGroup var password: StorePassword

        func run() throws {
            var problems = 0
            try runClient { () throws(ConvoyError) in
                let api = ConvoyAPIClient(socketPath: client.socket)
                try password.unlock(api, url)
                guard all || readDataSubset == nil else { throw .invalid("--read-data-subset goes with --all") }
                let started = all ? try api.verifyStore(.init(destination: url, readDataSubset: readDataSubset))
                    : try api.verifyBackup(url)
                let done = try JobFollower(api: api, json: job.json).follow(started)
                let result = done.result ?? [:]
                problems = Int(result["Problems"] ?? "0") ?? 0
                if !job.json {
                    for index in 0..<problems { Output.error(result["Problem\(index + 1)"] ?? "") }
                    if all {
                        print("\(result["Backups"] ?? "?") backups, \(result["Blocks"] ?? "?") blocks checked, "
                              + "\(result["BlocksRead"] ?? "?") read, \(problems) problem(s)")
                    } else {
                        print("\(result["Blocks"] ?? "?") blocks checked, \(problems) problem(s)")
                    }
                }
            }
            if problems > 0 { throw ExitCode.failure }
        }
    }
}

struct JobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job", abstract: "Long-running work in the daemon.", subcommands: [List.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List recent and running jobs.")
        @OptionGroup var client: ClientOptions

        func run() throws {
            try runClient { () throws(ConvoyError) in
                Output.jobs(try ConvoyAPIClient(socketPath: client.socket).jobs(), format: client.format)
            }
        }
    }
}

struct HydrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hydrate",
        abstract: "Show how far a lazily restored volume's data is local; --wait follows it to the end.")
    @OptionGroup var client: ClientOptions
    @OptionGroup var job: JobOptions
    @Argument var volume: String
    @Flag(help: "Wait until every file is local, with a progress bar.") var wait = false

    func run() throws {
        try runClient { () throws(ConvoyError) in
            let api = ConvoyAPIClient(socketPath: client.socket)
            var hydration = try api.hydration(of: volume)
            if wait, hydration.state == .hydrating, let id = hydration.job {
                _ = try JobFollower(api: api, json: job.json).follow(try api.job(id))
                hydration = try api.hydration(of: volume)
            }
            if hydration.state == .failed {
                throw ConvoyError(.driverFailure, "hydration of \(volume) failed: "
                    + "\(hydration.error ?? "unknown error")")
            }
            if !job.json || !wait { Output.json(hydration) }
        }
    }
}
