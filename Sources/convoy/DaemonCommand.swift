import ArgumentParser
import ConvoyCore
import Logging
import Foundation
import Plugin

struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon", abstract: "Run the daemon: Docker's volume plugin and the client API.")

    @Option(help: ArgumentHelp("A JSON file of settings named as these flags (\"plugin-socket\": \"...\"); flags "
        + "given here win. Default: \(DaemonConfigFile.defaultPath) when it exists.", valueName: "path"))
    var configFile: String?

    @Flag(help: "Check the configuration file and flags, print what they give, and exit without starting.")
    var checkConfig = false

    @Option(help: "Directory for the daemon's state and the drivers' default data (default: \(ClientAPI.defaultRoot)).")
    var root: String?

    @Option(help: "The client API socket (default: \(ClientAPI.defaultSocket)).")
    var socket: String?

    @Option(help: ArgumentHelp("The Docker plugin socket; its file name (without .sock) is the driver name Docker "
        + "uses (default: \(ClientAPI.defaultPluginSocket)).", valueName: "path"))
    var pluginSocket: String?

    @Option(help: ArgumentHelp("Drivers to enable (repeatable or comma-separated); the first is the default. "
        + "Default: as saved by the last start, else vfs."))
    var drivers: [String] = []

    @Option(name: .customLong("driver-opts"), help: "Driver option KEY=VALUE, e.g. vfs.path=/srv/volumes (repeatable).")
    var driverOptions: [String] = []

    @Flag(help: "Keep a volume and its data when Docker removes it (Convoy's old behaviour).")
    var ignoreDockerDelete = false

    @Option(help: "Endpoint of an S3-compatible server for s3:// destinations (default: AWS_ENDPOINT_URL, else AWS).")
    var s3Endpoint: String?

    @Option(help: ArgumentHelp(
        "Requests to one s3:// store in flight at once (uploads, ranged downloads; 1-256, default "
        + "\(DaemonConfiguration.defaultS3Concurrency)).", valueName: "n"))
    var s3Concurrency: Int?

    @Option(help: "Memory for decompressed blocks of all backup mounts together (lazy, browse); default 64M.")
    var fuseCacheSize: String?

    @Option(help: ArgumentHelp("Blocks fetched ahead when a file of a mounted backup is read sequentially (0-64; "
        + "default \(DaemonConfiguration.defaultReadAhead)).", valueName: "blocks"))
    var fuseReadAhead: Int?

    @Flag(help: "Also keep blocks fetched by mounted backups on disk, under <root>/cache/blocks.")
    var fuseDiskCache = false

    @Option(help: ArgumentHelp("How long lazy volumes' backup mounts wait for the next daemon when this one stops "
        + "or dies: a FUSE keeper process holds their connections, and reads wait instead of failing (default "
        + "\(Int(DaemonConfiguration.defaultHandoffSeconds)); 0: the mounts go with the daemon).",
        valueName: "seconds"))
    var fuseHandoffTimeout: Double?

    @Option(help: "Seconds to wait before hydrating each file of a lazily restored volume (throttles hydration).")
    var hydrationPause: Double?

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
            + "hosts still count its mounts (default 30).", valueName: "seconds"))
    var hostLeaseTTL: Double?

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

    @Option(help: ArgumentHelp("Serve Prometheus metrics at /metrics on HOST:PORT (e.g. 127.0.0.1:"
        + "\(MetricsAddress.defaultPort)) or unix:PATH (root only). Default: no metrics.", valueName: "address"))
    var metricsAddress: String?

    @Flag(help: ArgumentHelp("Also serve each hydrating lazy volume's progress as series labelled with its name "
        + "(one pair per such volume; off by default so that series stay bounded)."))
    var metricsPerVolume = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default info).")
    var logLevel: String?

    func run() async throws {
        let file: DaemonConfigFile
        do throws(ConvoyError) { file = try DaemonConfigFile.load(configFile) } catch {
            Output.error(error.message)
            throw ExitCode.failure
        }
        let settings = DaemonSettings(command: self, file: file)
        if checkConfig {
            do throws(ConvoyError) {
                let configuration = try settings.configuration()
                print("configuration OK: root \(configuration.root), plugin socket \(configuration.pluginSocket), "
                    + "drivers \(configuration.drivers?.joined(separator: ",") ?? "as saved (vfs on a first start)")")
                return
            } catch {
                Output.error(error.message)
                throw ExitCode.failure
            }
        }
        let logLevel = settings.string("log-level", self.logLevel) ?? "info"
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
            try await Daemon.run(try settings.configuration(), logger: logger)
        } catch {
            Output.error(error.message)
            throw ExitCode.failure
        }
    }
}
