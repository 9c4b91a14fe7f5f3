/// Drivers whose volumes are block devices that convoy backs up and restores as one image of the whole volume
/// (devicemapper's thin volumes). Block backups, block restores and lazy block restores use only this contract,
/// so another block driver plugs into the daemon without touching it.
///
/// Snapshots are the driver's own (`SnapshotDriver`): the `info` handed to these methods is what its
/// `createSnapshot` returned. Block indexes count `blockSize` units from the start of the device. Calls for one
/// volume are serialized by the daemon; calls for different volumes and snapshots may run concurrently.
public protocol BlockImageDriver: SnapshotDriver {
    /// The unit of changed-block tracking and the length of a block backup's chunks. Fixed for the driver's
    /// storage: a backup made with another block size is never the base of an incremental one.
    var blockSize: UInt64 { get }

    /// The blocks a backup of snapshot `info` must read. Without `base`: every block that holds data (blocks
    /// never written read as zeros and are not listed). With `base` (an older snapshot of the same volume, the
    /// one its previous backup was taken from): only the blocks written since, and in `unmapped` the blocks that
    /// `base` held and the snapshot no longer does. Both snapshots must exist until this returns.
    func changedBlocks(of snapshot: [String: String], since base: [String: String]?) async throws(ConvoyError)
        -> BlockChanges

    /// Makes snapshot `name` readable as a read-only block device and returns the device's path. Idempotent;
    /// the device stays until `deactivateSnapshot`.
    func activateSnapshot(_ name: String, info: [String: String]) async throws(ConvoyError) -> String
    /// Removes the device `activateSnapshot` made. Idempotent.
    func deactivateSnapshot(_ name: String) async throws(ConvoyError)

    /// The writable device of a volume created with `receivesImage` (every block reads as zeros), for a restore
    /// to write a whole image onto. Activates the volume's device when it is not.
    func deviceForImage(_ volume: DriverVolume) async throws(ConvoyError) -> String
    /// The filesystem on the volume's device when it is one the driver mounts, else nil. A restored image brings
    /// its own filesystem: the daemon records the answer as the volume's `FS` so that mounts use it.
    func detectFilesystem(_ volume: DriverVolume) async throws(ConvoyError) -> String?

    // MARK: External origin (lazy restore)

    /// Whether the volume's record says that the blocks it never wrote come from an external origin (a lazy
    /// restore not yet finished). Such a volume mounts only while its origin is attached.
    func hasExternalOrigin(_ volume: DriverVolume) -> Bool
    /// Makes `image` (a read-only file holding a whole volume's image) the external origin of `volume`, which
    /// must have been created with `receivesImage`: blocks the volume never wrote read from the image, writes
    /// land in the volume. Repeating it (after a restart, with the image served again) points the origin at the
    /// new image. Returns the info to merge into the volume's record.
    func attachExternalOrigin(image: String, to volume: DriverVolume) async throws(ConvoyError) -> [String: String]
    /// Copies into the volume every block overlapping `regions` (byte ranges of the image that hold data) that
    /// the volume never wrote, then drops the origin. The volume must not be mounted (a write racing the copy of
    /// its block would be lost). Safe to repeat after a crash.
    func finishExternalOrigin(of volume: DriverVolume, regions: [Range<UInt64>]) async throws(ConvoyError)
        -> ExternalOriginFinish
    /// Removes the origin of volume `volumeName` and what holds the image open, once the volume no longer uses
    /// it (finished, or deactivated). Nothing to do when there is none. By name, so that the leftovers of a
    /// volume that no longer exists can go too.
    func removeExternalOrigin(of volumeName: String) async throws(ConvoyError)
    /// Unmounts the volume and removes its device, keeping its data: what must go before its origin can.
    func deactivate(_ volume: DriverVolume) async throws(ConvoyError)
}

/// What a block backup must read (`BlockImageDriver.changedBlocks`).
public struct BlockChanges: Sendable, Equatable {
    /// Blocks to read.
    public var read: [UInt64]
    /// Blocks the base held that are gone now (an incremental backup drops them from the image).
    public var unmapped: Set<UInt64>

    public init(read: [UInt64], unmapped: Set<UInt64>) {
        self.read = read
        self.unmapped = unmapped
    }
}

/// The outcome of `BlockImageDriver.finishExternalOrigin`.
public struct ExternalOriginFinish: Sendable, Equatable {
    public var bytesCopied: UInt64
    /// The volume's driver info without its origin: the record to keep from now on.
    public var driverInfo: [String: String]

    public init(bytesCopied: UInt64, driverInfo: [String: String]) {
        self.bytesCopied = bytesCopied
        self.driverInfo = driverInfo
    }
}

/// A block driver's volume without a filesystem, used as a device (CSI's block access): its `FS` is `filesystem`.
public enum RawBlock {
    public static let filesystem = "none"

    public static func isRaw(_ driverInfo: [String: String]) -> Bool { driverInfo["FS"] == filesystem }
}
