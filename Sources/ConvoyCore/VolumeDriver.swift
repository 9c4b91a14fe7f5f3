#if canImport(Glibc)
import Glibc
#endif
/// Where a driver's volumes can be reached from: this host only, or every host (shared storage).
public enum VolumeScope: String, Sendable, Codable {
    case local
    case global
}

/// What a driver knows about one of its volumes. `driverInfo` is the driver's own record (paths, device ids),
/// persisted by the daemon and handed back on every call, so drivers hold no index of their own.
public struct DriverVolume: Sendable, Equatable {
    public var name: String
    public var size: UInt64?
    public var options: [String: String]
    public var driverInfo: [String: String]
    /// Set when creating a volume that a restore fills with an image of a whole volume: a block driver then
    /// creates it blank (no filesystem to make, since the image brings one).
    public var receivesImage: Bool

    public init(name: String, size: UInt64?, options: [String: String] = [:], driverInfo: [String: String] = [:],
                receivesImage: Bool = false) {
        self.name = name
        self.size = size
        self.options = options
        self.driverInfo = driverInfo
        self.receivesImage = receivesImage
    }
}

/// Volume operations every driver implements (Convoy's first operation group; snapshots and backups are further
/// protocols a driver may adopt). Calls for one volume are serialized by the daemon; calls for different volumes
/// may run concurrently.
public protocol VolumeDriver: Sendable {
    /// The name users pass as `--driver` / `-o driver=`.
    var name: String { get }
    var scope: VolumeScope { get }
    /// Per-volume options this driver accepts besides the daemon's own (`driver`, `size`).
    var volumeOptionKeys: Set<String> { get }
    /// False for drivers whose volumes are plain directories that are always available (vfs): the daemon then
    /// has nothing to mount or unmount when references come and go.
    var mountsVolumes: Bool { get }

    /// Facts for `convoy info`.
    func info() -> [String: String]

    /// Creates the volume's storage and returns the driver info to persist for it. Must not leave anything behind
    /// when it throws.
    func createVolume(_ volume: DriverVolume) async throws(ConvoyError) -> [String: String]
    /// Deletes the volume's data. Deleting a volume whose data is already gone succeeds.
    func deleteVolume(_ volume: DriverVolume) async throws(ConvoyError)
    /// Makes the volume's filesystem available and returns its mountpoint. Idempotent.
    func mountVolume(_ volume: DriverVolume) async throws(ConvoyError) -> String
    /// Undoes `mountVolume`. Idempotent.
    func unmountVolume(_ volume: DriverVolume) async throws(ConvoyError)

    /// Reconciliation: does the volume's data still exist?
    func dataExists(_ volume: DriverVolume) -> Bool
    /// Reconciliation: is the volume currently available at its mountpoint?
    func isMounted(_ volume: DriverVolume) -> Bool

    /// Brings up what the driver's volumes live on (a thin pool), once, before the daemon uses it.
    func start() async throws(ConvoyError)

    /// The size recorded for a volume created without one, when the driver applies a default (nil: none).
    var defaultVolumeSize: UInt64? { get }

    /// What users should know about the volume's storage right now (a shared mount's health), shown in the
    /// Status of Docker's Get and in `convoy inspect`.
    func status(of volume: DriverVolume) async -> [String: String]

    /// Where, in storage that several hosts mount, the daemon keeps the catalog of this driver's volumes shared
    /// by those hosts (issue 19); nil for a driver whose volumes are this host's alone.
    var sharedCatalogDirectory: String? { get }

    /// Bytes new volumes can still take from what the driver provisions from (CSI's GetCapacity); nil when the
    /// driver has no such limit (a cloud service).
    func availableBytes() async throws(ConvoyError) -> UInt64?
}

extension VolumeDriver {
    public func start() async throws(ConvoyError) {}
    public var defaultVolumeSize: UInt64? { nil }
    public func status(of volume: DriverVolume) async -> [String: String] { [:] }
    public var sharedCatalogDirectory: String? { nil }
    public func availableBytes() async throws(ConvoyError) -> UInt64? { nil }

    /// What the filesystem holding `path` has free for unprivileged writers.
    public static func freeBytes(of path: String) throws(ConvoyError) -> UInt64 {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else {
            let reason = String(cString: strerror(errno))
            throw ConvoyError(.driverFailure, "cannot read the free space of \(path): \(reason)")
        }
        return UInt64(stats.f_bavail) * UInt64(stats.f_frsize)
    }
}

/// Drivers that take point-in-time snapshots themselves (devicemapper's thin snapshots): Convoy's second operation
/// group. The returned info is persisted with the snapshot and handed back to delete it.
public protocol SnapshotDriver: VolumeDriver {
    func createSnapshot(_ name: String, of volume: DriverVolume) async throws(ConvoyError) -> [String: String]
    func deleteSnapshot(_ name: String, info: [String: String], of volume: DriverVolume) async throws(ConvoyError)
}

/// Drivers whose volumes are directory trees (vfs, glusterfs). Their snapshots and backups are file backups, and
/// one implementation in the daemon serves all of them.
public protocol DirectoryBackedDriver: VolumeDriver {
    /// The directory holding the volume's files.
    func dataDirectory(of volume: DriverVolume) throws(ConvoyError) -> String
    /// False when overlayfs cannot use this driver's directories as its upper layer (a FUSE filesystem such as
    /// gluster's): a lazy restore then keeps the volume's writes under the daemon's root until it is hydrated,
    /// and copies its tree in at the end.
    var holdsOverlayUpperLayer: Bool { get }
}

extension DirectoryBackedDriver {
    public var holdsOverlayUpperLayer: Bool { true }
}

extension VolumeDriver {
    /// The directory holding `volume`'s files, for work done on files (file snapshots, file restores, lazy
    /// overlays); a driver whose volumes are not directories is refused with `refusal`.
    public func directory(of volume: DriverVolume, refusal: @autoclosure () -> String) throws(ConvoyError) -> String {
        guard let directoryDriver = self as? any DirectoryBackedDriver else { throw .invalid(refusal()) }
        return try directoryDriver.dataDirectory(of: volume)
    }
}

/// Drivers whose backups live in their own storage service rather than in a backup store (ebs: EBS snapshots),
/// addressed by `<backupScheme>://...` URLs. The daemon hands every such URL (create's destination, list, inspect,
/// delete, restore) to the driver of that scheme.
public protocol NativeBackupDriver: SnapshotDriver {
    var backupScheme: String { get }
    /// Makes a snapshot the driver took into a backup; the result holds its `URL`.
    func createBackup(snapshot name: String, info: [String: String],
                      destination: String) async throws(ConvoyError) -> [String: String]
    func listBackups(destination: String, volume: String?) async throws(ConvoyError) -> [ClientAPI.Backup]
    func inspectBackup(_ url: String) async throws(ConvoyError) -> ClientAPI.Backup
    func deleteBackup(_ url: String) async throws(ConvoyError) -> [String: String]
    /// The per-volume options that make `createVolume` start from the backup.
    func restoreOptions(_ url: String) throws(ConvoyError) -> [String: String]
}

/// Drivers whose volumes grow (CSI's expansion): the storage first, mounted or not, then the filesystem of a
/// mounted volume. Never shrinks.
public protocol ExpandableDriver: VolumeDriver {
    /// Grows the volume's storage to at least `size` bytes; returns the driver info to persist (its size).
    func expandVolume(_ volume: DriverVolume, to size: UInt64) async throws(ConvoyError) -> [String: String]
    /// Grows the mounted volume's filesystem to fill its storage.
    func expandFilesystem(_ volume: DriverVolume) async throws(ConvoyError)
    /// Whether a volume's filesystem is a step of its own (a block device's), to take where it is mounted.
    var expandsFilesystem: Bool { get }
}

/// Drivers whose volumes are block devices attached on demand (ebs), which serve raw block volumes (`RawBlock`:
/// created with `receivesImage`, so no filesystem is made) without being block-image drivers. Attaching takes
/// what a mount would take (the volume's lease) and gives the device; `unmountVolume` gives it back.
public protocol RawDeviceDriver: VolumeDriver {
    func attachRawDevice(_ volume: DriverVolume) async throws(ConvoyError) -> String
}

/// Drivers whose volumes live outside every host and are attached to the machine of the host that uses them
/// (ebs): CSI's ControllerPublish and ControllerUnpublish, answered by whichever host's convoy the CO asks.
/// `driverInfo` is this host's record of the volume when it has one; without it the driver finds the volume by
/// name in the storage every host shares. Nothing is mounted here: the host that stages the volume mounts it,
/// under its lease.
public protocol AttachingDriver: VolumeDriver {
    /// Attaches volume `name` to the machine of host `host`; returns what that host's stage may use (the CSI
    /// publish context), or nil when the driver has no volume of that name. `.notFound` for a host that does
    /// not exist, `.conflict` while another host uses the volume, `.exhausted` when the machine has no room.
    func attach(_ name: String, driverInfo: [String: String]?,
                toHost host: String) async throws(ConvoyError) -> [String: String]?
    /// Detaches the volume from the machine of host `host` (nil: of every host); nothing to do when it is not
    /// attached there (or the volume or host is gone). `.conflict` while such a host still uses it.
    func detach(_ name: String, driverInfo: [String: String]?, fromHost host: String?) async throws(ConvoyError)
    /// Volume `name` as another host made it, for this host to record at its first use here (a CSI node staging a
    /// volume that followed its pod); nil when the driver has no volume of that name this host could use.
    func madeElsewhere(_ name: String) async throws(ConvoyError) -> (driverInfo: [String: String], size: UInt64)?
}
