import BackupFS
import Backupstore
import ConvoyCore
import Foundation

/// Everything `convoy daemon` is started with.
public struct DaemonConfiguration: Sendable {
    public var root: String
    public var socket: String
    public var pluginSocket: String
    /// nil: use the drivers saved by the last start, or `vfs` on a first start.
    public var drivers: [String]?
    public var driverOptions: [String: String]
    public var ignoreDockerDelete: Bool
    /// S3-compatible endpoint for s3:// destinations (nil: AWS_ENDPOINT_URL or AWS).
    public var s3Endpoint: String?
    /// `--s3-concurrency`: requests to one s3:// store in flight at once.
    public var s3Concurrency = DaemonConfiguration.defaultS3Concurrency
    public static let defaultS3Concurrency = S3ObjectStore.defaultConcurrency
    /// Memory for decompressed blocks of all mounted backups together (browse mounts and lazy volumes).
    public var fuseCacheBytes: UInt64 = 64 << 20
    /// Blocks fetched ahead when a mounted backup's file is read sequentially.
    public var fuseReadAheadBlocks = BackupMountOptions.defaultReadAheadBlocks
    public static let defaultReadAhead = BackupMountOptions.defaultReadAheadBlocks
    /// Keep fetched blocks on disk under `<root>/cache/blocks` too.
    public var fuseDiskCache = false
    /// Pause before hydrating each file (throttles hydration; tests use it).
    public var hydrationPause: Duration = .zero
    /// The group (name or number) whose members may use the client socket, like dockerd's `-G`; nil: root only.
    public var socketGroup: String?
    /// `--backup-destinations`: URL prefixes of backup stores this daemon may read (and, when any are given, the
    /// only ones it writes new backups to), besides those it has written to (`BackupDestinations`).
    public var backupDestinations: [String] = []
    /// `--allow-any-backup-destination`: no check of destinations (stores other daemons wrote).
    public var allowAnyBackupDestination = false
    /// `--store-password-file URL=FILE`: encrypted stores the daemon opens by itself (scheduled policies, lazy
    /// volumes after a restart), by canonical store URL.
    public var storePasswordFiles: [String: String] = [:]
    /// `--append-only URL`: stores this host never deletes in (canonical URLs).
    public var appendOnlyDestinations: Set<String> = []
    /// `--browse-root`: where backups may be mounted for browsing; nil: `BrowseTargets.defaultRoots`.
    public var browseRoots: [String]?
    /// `--allow-any-browse-target`: no check of browse mount targets.
    public var allowAnyBrowseTarget = false
    /// `--host-id`: who this daemon is to hosts sharing its storage; nil: as recorded, else derived (HostIdentity).
    public var hostID: String?
    /// `--host-lease-ttl`: how long this host's lease in shared catalogs lasts without renewal (SharedHosts).
    public var hostLeaseSeconds: TimeInterval = SharedHosts.defaultTimeToLive
    /// `--fuse-handoff-timeout`: how long the FUSE keeper holds lazy volumes' mounts for the next daemon; 0: none
    /// (they go with the daemon).
    public var fuseHandoffSeconds: Double = DaemonConfiguration.defaultHandoffSeconds
    public static let defaultHandoffSeconds: Double = 120
    /// `--metrics-address`: where Prometheus scrapes `/metrics`; nil: no metrics server.
    public var metricsAddress: MetricsAddress?
    /// `--metrics-per-volume`: series labelled with volume names (hydration of lazy volumes); off: bounded labels.
    public var metricsPerVolume = false
    /// `--csi-socket`: where to serve CSI v1 over gRPC; nil: no CSI.
    public var csiSocket: String?
    /// `--csi-snapshot-dest`: where CSI snapshots are backed up when their class names no `dest`.
    public var csiSnapshotDestination: String?
    /// `--csi-expand-on-node`: no controller expansion claimed; NodeExpandVolume grows storage and filesystem.
    public var csiExpandOnNode = false

    public init(root: String = ClientAPI.defaultRoot, socket: String = ClientAPI.defaultSocket,
                pluginSocket: String = ClientAPI.defaultPluginSocket, drivers: [String]? = nil,
                driverOptions: [String: String] = [:], ignoreDockerDelete: Bool = false, s3Endpoint: String? = nil) {
        self.s3Endpoint = s3Endpoint
        self.root = root
        self.socket = socket
        self.pluginSocket = pluginSocket
        self.drivers = drivers
        self.driverOptions = driverOptions
        self.ignoreDockerDelete = ignoreDockerDelete
    }

    /// Values of a list option given repeatedly and/or comma-separated (`--drivers a,b --drivers c`), trimmed,
    /// empty ones dropped.
    public static func list(_ values: [String]) -> [String] {
        values.flatMap { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
            .filter { !$0.isEmpty }
    }

    /// Parses `KEY=VALUE` pairs of `--driver-opts`.
    public static func parseDriverOptions(_ pairs: [String]) throws(ConvoyError) -> [String: String] {
        var options: [String: String] = [:]
        for pair in pairs {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw .invalid("--driver-opts: '\(pair)' is not KEY=VALUE")
            }
            let key = String(pair[..<equals])
            guard options[key] == nil else { throw .invalid("--driver-opts: '\(key)' is given twice") }
            options[key] = String(pair[pair.index(after: equals)...])
        }
        return options
    }
}

/// The drivers and options a daemon runs with, saved in the state store so a restart without flags keeps them.
struct SavedDriverConfiguration: Codable, Equatable {
    var drivers: [String]
    var options: [String: String]

    static let key = "drivers"

    /// Flags win; without `--drivers` the saved drivers are used, with saved options overridden by given ones.
    /// Credentials written into an option's URL (`ebs.endpoint=https://user:password@...`) are dropped: they
    /// authenticate nothing there, and the result is saved in the state.
    static func resolve(_ configuration: DaemonConfiguration,
                        saved: SavedDriverConfiguration?) -> SavedDriverConfiguration {
        var resolved = resolveFlags(configuration, saved: saved)
        resolved.options = resolved.options.mapValues(Redaction.withoutCredentials)
        return resolved
    }

    private static func resolveFlags(_ configuration: DaemonConfiguration,
                                     saved: SavedDriverConfiguration?) -> SavedDriverConfiguration {
        if let drivers = configuration.drivers {
            return SavedDriverConfiguration(drivers: drivers, options: configuration.driverOptions)
        }
        if let saved {
            return SavedDriverConfiguration(drivers: saved.drivers,
                                            options: saved.options.merging(configuration.driverOptions) { $1 })
        }
        return SavedDriverConfiguration(drivers: ["vfs"], options: configuration.driverOptions)
    }

    func encoded() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func decode(_ text: String?) -> SavedDriverConfiguration? {
        guard let text else { return nil }
        return try? JSONDecoder().decode(SavedDriverConfiguration.self, from: Data(text.utf8))
    }
}
