import ArgumentParser
import ConvoyCore
import Logging
import Foundation
import Plugin

struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon", abstract: "Run the daemon: Docker's volume plugin and the client API.")

    @Option(help: "Directory for the daemon's state and the drivers' default data.")
    var root: String = ClientAPI.defaultRoot

    @Option(help: "The client API socket.")
    var socket: String = ClientAPI.defaultSocket

    @Option(help: "The Docker plugin socket; its file name (without .sock) is the driver name Docker uses.")
    var pluginSocket: String = ClientAPI.defaultPluginSocket

    @Option(help: ArgumentHelp("Drivers to enable (repeatable or comma-separated); the first is the default. "
        + "Default: as saved by the last start, else vfs."))
    var drivers: [String] = []

    @Option(name: .customLong("driver-opts"), help: "Driver option KEY=VALUE, e.g. vfs.path=/srv/volumes (repeatable).")
    var driverOptions: [String] = []

    @Flag(help: "Keep a volume and its data when Docker removes it (Convoy's old behaviour).")
    var ignoreDockerDelete = false

    @Option(help: "Endpoint of an S3-compatible server for s3:// destinations (default: AWS_ENDPOINT_URL, else AWS).")
    var s3Endpoint: String?

    @Option(help: "Memory for decompressed blocks of all backup mounts together (lazy, browse), e.g. 256M.")
    var fuseCacheSize: String = "256M"

    @Option(help: "Blocks fetched ahead when a file of a mounted backup is read sequentially (0-64).")
    var fuseReadAhead: Int = DaemonConfiguration().fuseReadAheadBlocks

    @Flag(help: "Also keep blocks fetched by mounted backups on disk, under <root>/cache/blocks.")
    var fuseDiskCache = false

    @Option(help: "Seconds to wait before hydrating each file of a lazily restored volume (throttles hydration).")
    var hydrationPause: Double = 0

    @Option(help: "A group whose members may use the client socket (like dockerd's -G); default: root only.")
    var socketGroup: String?

    @Option(help: ArgumentHelp(
        "Backup stores this daemon may read (restore, list, inspect, verify, delete, browse): URL prefixes, "
            + "repeatable or comma-separated, e.g. vfs:///srv/backups or s3://bucket@us-east-1/prefix. Destinations "
            + "it has written a backup to are always allowed; when any are given, new backups go only to those.",
        valueName: "prefix"))
    var backupDestinations: [String] = []

    @Flag(help: "Read backups from any store a client names (stores other daemons wrote): no destination check.")
    var allowAnyBackupDestination = false

    @Option(help: ArgumentHelp(
        "An encrypted store the daemon opens by itself, for scheduled backups and lazy volumes after a restart: "
            + "URL=FILE, FILE holding its passphrase (repeatable).", valueName: "URL=FILE"))
    var storePasswordFile: [String] = []

    @Option(help: ArgumentHelp(
        "A destination this host only adds backups to, never deleting anything there (forget, delete and collect "
            + "are refused: run them from a trusted host); give the host credentials without delete rights "
            + "(repeatable).", valueName: "URL"))
    var appendOnly: [String] = []

    @Option(help: ArgumentHelp(
        "A directory under which `backup mount` may mount backups (repeatable). "
            + "Default: /mnt, /media, /run/convoy/browse and <root>/browse.",
        valueName: "dir"))
    var browseRoot: [String] = []

    @Flag(help: "Let `backup mount` mount a backup on any directory: no browse-root check.")
    var allowAnyBrowseTarget = false

    @Option(name: .customLong("host-id"), help: ArgumentHelp(
        "Who this daemon is to other hosts sharing its storage, recorded in what it writes there. "
            + "Default: as recorded by an earlier start, else <hostname>-<12 hex digits of /etc/machine-id>.",
        valueName: "id"))
    var hostID: String?

    @Option(name: .customLong("host-lease-ttl"), help: ArgumentHelp(
        "Seconds this host's lease on shared storage (vfs.shared) lasts unrenewed: after a crash, how long other "
            + "hosts still count its mounts.", valueName: "seconds"))
    var hostLeaseTTL: Double = 30

    @Option(help: ArgumentHelp("Serve the Container Storage Interface (CSI v1, gRPC) on this UNIX socket, root "
        + "only, for Kubernetes and other CSI orchestrators. Default: no CSI.", valueName: "path"))
    var csiSocket: String?

    @Option(help: ArgumentHelp("Where CSI snapshots are backed up (a backup URL such as s3://bucket@region/path) "
        + "when their snapshot class has no 'dest' parameter.", valueName: "url"))
    var csiSnapshotDest: String?

    @Flag(help: ArgumentHelp("Claim no controller expansion in CSI: volumes grow where they are staged "
        + "(NodeExpandVolume), so one external-resizer in its node-only mode serves volumes that live on single "
        + "nodes (deploy/kubernetes)."))
    var csiExpandOnNode = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            Output.error("--log-level: unknown level '\(logLevel)'")
            throw ExitCode.failure
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "convoy")
        do throws(ConvoyError) {
            let names = DaemonConfiguration.list(drivers)
            var configuration = DaemonConfiguration(
                root: root, socket: socket, pluginSocket: pluginSocket, drivers: names.isEmpty ? nil : names,
                driverOptions: try DaemonConfiguration.parseDriverOptions(driverOptions),
                ignoreDockerDelete: ignoreDockerDelete, s3Endpoint: s3Endpoint)
            configuration.fuseCacheBytes = try ByteSize.parse(fuseCacheSize, option: "--fuse-cache-size")
            configuration.fuseDiskCache = fuseDiskCache
            guard (0...64).contains(fuseReadAhead) else {
                throw ConvoyError.invalid("--fuse-read-ahead: \(fuseReadAhead) is not between 0 and 64 blocks")
            }
            configuration.fuseReadAheadBlocks = fuseReadAhead
            guard hydrationPause >= 0, hydrationPause <= 3600 else {
                throw ConvoyError.invalid("--hydration-pause: \(hydrationPause) is not between 0 and 3600 seconds")
            }
            configuration.hydrationPause = .milliseconds(Int(hydrationPause * 1000))
            configuration.socketGroup = socketGroup
            configuration.backupDestinations = DaemonConfiguration.list(backupDestinations)
            configuration.allowAnyBackupDestination = allowAnyBackupDestination
            configuration.storePasswordFiles = try StoreKeyring.parse(storePasswordFile)
            configuration.appendOnlyDestinations = try StoreFactory.canonicalURLs(appendOnly)
            configuration.browseRoots = browseRoot.isEmpty ? nil : browseRoot
            configuration.allowAnyBrowseTarget = allowAnyBrowseTarget
            configuration.hostID = hostID
            guard hostLeaseTTL >= 3, hostLeaseTTL <= 3600 else {
                throw ConvoyError.invalid("--host-lease-ttl: \(hostLeaseTTL) is not between 3 and 3600 seconds")
            }
            configuration.hostLeaseSeconds = hostLeaseTTL
            configuration.csiSocket = csiSocket
            configuration.csiSnapshotDestination = csiSnapshotDest
            configuration.csiExpandOnNode = csiExpandOnNode
            try await Daemon.run(configuration, logger: logger)
        } catch {
            Output.error(error.message)
            throw ExitCode.failure
        }
    }
}
