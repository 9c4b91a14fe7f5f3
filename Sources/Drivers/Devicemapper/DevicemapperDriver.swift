import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `devicemapper`: each volume is a thin device in a dm-thin pool with a filesystem on it, mounted at
/// `<root>/devicemapper/mounts/<name>` while it has references. Snapshots are thin snapshots (instant, sharing
/// blocks with their origin). Device ids are allocated once and never reused.
///
/// The volume's record (driver info) holds its device id, size and filesystem; the pool's layout is the driver's
/// configuration. Nothing else is kept: after a restart the pool and the devices are activated again from these.
public struct DevicemapperDriver: BlockImageDriver {
    public static let driverName = "devicemapper"
    public static var optionKeys: Set<String> { ThinPoolConfiguration.optionKeys }

    public let name = Self.driverName
    public let scope = VolumeScope.local
    public let volumeOptionKeys: Set<String> = ["fs"]
    public let mountsVolumes = true
    let configuration: ThinPoolConfiguration
    let pool: ThinPool
    let ids: DeviceIDs
    /// Shared by every copy of the driver: one reader of the pool's metadata snapshot at a time.
    let metadataLock = MetadataSnapshotLock()

    public init(context: DriverContext) throws(ConvoyError) {
        configuration = try ThinPoolConfiguration(root: context.root, options: context.options)
        pool = ThinPool(configuration: configuration)
        ids = DeviceIDs(path: configuration.directory + "/next-device-id")
    }

    public func start() async throws(ConvoyError) {
        if access("/dev/mapper/control", F_OK) != 0 { _ = try? await DMSetup.run("/sbin/modprobe", ["dm-mod"]) }
        guard access("/dev/mapper/control", F_OK) == 0 else {
            throw ConvoyError(.unavailable, "this kernel has no device-mapper (/dev/mapper/control is missing); "
                + "the devicemapper driver needs it")
        }
        try await pool.activate()
        await ThinMetadata.releaseStaleSnapshot(poolName: configuration.poolName)
        try Filesystem.makeDirectory(mountsDirectory, mode: 0o700)
    }

    public func info() -> [String: String] {
        ["ThinPool": configuration.poolName, "ThinPoolBlockSize": "\(configuration.blockSectors * 512)",
         "DataDevice": configuration.dataDevice ?? configuration.directory + "/data.img",
         "MetadataDevice": configuration.metadataDevice ?? configuration.directory + "/metadata.img",
         "DefaultVolumeSize": "\(configuration.defaultVolumeSize)", "DefaultFS": configuration.defaultFilesystem,
         "Scope": scope.rawValue]
    }

    public func availableBytes() async throws(ConvoyError) -> UInt64? { try await pool.freeDataBytes() }

    var mountsDirectory: String { configuration.directory + "/mounts" }

    /// Device-mapper names start with the pool's name, so two pools on one host never collide, then `v-` for
    /// volumes and `s-` for snapshots, so a volume and a snapshot never share a name whatever they are called.
    func deviceName(_ volume: String) -> String { "\(configuration.poolName)-v-\(volume)" }

    func mountpoint(_ volume: DriverVolume) throws(ConvoyError) -> String {
        try PathGuard.child(of: mountsDirectory, named: volume.name)
    }

    // MARK: Volumes

    public func createVolume(_ volume: DriverVolume) async throws(ConvoyError) -> [String: String] {
        let size = volume.size ?? configuration.defaultVolumeSize
        guard size % 512 == 0, size >= 16 << 20 else {
            throw .invalid("size: \(size) bytes is not a multiple of 512 of at least 16M")
        }
        let filesystem = volume.options["fs"] ?? configuration.defaultFilesystem
        guard ThinPoolConfiguration.filesystems.contains(filesystem) else {
            throw .invalid("fs: '\(filesystem)' is not one of "
                + "\(ThinPoolConfiguration.filesystems.sorted().joined(separator: ", "))")
        }
        let id = try ids.next()
        let device = deviceName(volume.name)
        try await DMSetup.message(configuration.poolName, "create_thin \(id)")
        do {
            try await DMSetup.create(device, table: "0 \(size / 512) thin \(pool.device) \(id)")
            // A new thin device maps no block and reads as zeros: ready for an image as it is.
            if !volume.receivesImage { try await BlockFilesystem.make(filesystem, on: "/dev/mapper/" + device) }
        } catch {
            try? await DMSetup.remove(device)
            try? await DMSetup.message(configuration.poolName, "delete \(id)")
            throw error
        }
        return ["DeviceID": "\(id)", "Device": "/dev/mapper/" + device, "Size": "\(size)", "FS": filesystem]
    }

    /// Unmounts, removes the device, then deletes the thin device from the pool, which frees its blocks.
    public func deleteVolume(_ volume: DriverVolume) async throws(ConvoyError) {
        try await unmountVolume(volume)
        try await DMSetup.remove(deviceName(volume.name))
        if let id = volume.driverInfo["DeviceID"] {
            do {
                try await DMSetup.message(configuration.poolName, "delete \(id)")
            } catch where error.message.contains("No data available") || error.message.contains("not found") {
                // Already deleted (an interrupted delete being finished).
            }
        }
        if let path = try? mountpoint(volume) { rmdir(path) }
    }

    public func mountVolume(_ volume: DriverVolume) async throws(ConvoyError) -> String {
        let path = try mountpoint(volume)
        if isMounted(volume) { return path }
        guard !RawBlock.isRaw(volume.driverInfo) else {
            throw ConvoyError(.conflict, "volume \(volume.name) is a raw block volume (made for CSI block access): "
                + "it has no filesystem to mount")
        }
        let device = try await activate(volume)
        try await BlockFilesystem.mount(device, filesystem: volume.driverInfo["FS"] ?? configuration.defaultFilesystem,
                                        at: path)
        return path
    }

    public func unmountVolume(_ volume: DriverVolume) async throws(ConvoyError) {
        try await BlockFilesystem.unmount(try mountpoint(volume))
    }

    /// The volume's device, created again from its record when it is not active (after a reboot).
    func activate(_ volume: DriverVolume) async throws(ConvoyError) -> String {
        let name = deviceName(volume.name)
        guard let id = volume.driverInfo["DeviceID"], let size = volume.driverInfo["Size"].flatMap(UInt64.init) else {
            throw ConvoyError(.stateFailure, "volume \(volume.name) has no device id or size in its record")
        }
        if !(await DMSetup.exists(name)) {
            let origin = volume.driverInfo[Self.externalOriginKey]
            if let origin, !(await DMSetup.exists(origin)) {
                throw ConvoyError(.unavailable, "volume \(volume.name) is being restored lazily and its backup is not "
                    + "attached (no device \(origin)); the daemon attaches it at start: "
                    + "see its log for why it could not")
            }
            try await DMSetup.create(name, table: thinTable(volume, id: id, size: size, origin: origin))
        }
        return "/dev/mapper/" + name
    }

    /// A thin device is not checked here (that needs the pool's metadata); its record is trusted, so a volume is
    /// never forgotten because a pool was slow to come up.
    public func dataExists(_ volume: DriverVolume) -> Bool { volume.driverInfo["DeviceID"] != nil }

    public func isMounted(_ volume: DriverVolume) -> Bool {
        guard let path = try? mountpoint(volume) else { return false }
        return MountInfo.isMountPoint(path)
    }

    // MARK: Snapshots

    /// Suspends the volume's device (which freezes its filesystem), creates the snapshot, resumes.
    public func createSnapshot(_ name: String, of volume: DriverVolume) async throws(ConvoyError) -> [String: String] {
        guard let origin = volume.driverInfo["DeviceID"] else {
            throw ConvoyError(.stateFailure, "volume \(volume.name) has no device id in its record")
        }
        // A snapshot would share the volume's unwritten blocks, which live in the backup until the volume is finished.
        guard volume.driverInfo[Self.externalOriginKey] == nil else {
            throw ConvoyError(.conflict, "volume \(volume.name) is still being restored lazily: snapshot it once it "
                + "is hydrated (convoy hydrate \(volume.name) --wait) and has been unmounted")
        }
        let id = try ids.next()
        let device = try await activate(volume)
        try await DMSetup.suspend(device)
        let created: ConvoyError?
        do throws(ConvoyError) {
            try await DMSetup.message(configuration.poolName, "create_snap \(id) \(origin)")
            created = nil
        } catch {
            created = error
        }
        try await DMSetup.resume(device)
        if let created { throw created }
        return ["DeviceID": "\(id)", "OriginDeviceID": origin, "Size": volume.driverInfo["Size"] ?? "0",
                "FS": volume.driverInfo["FS"] ?? configuration.defaultFilesystem]
    }

    public func deleteSnapshot(_ name: String, info: [String: String],
                               of volume: DriverVolume) async throws(ConvoyError) {
        try await DMSetup.remove(snapshotDeviceName(name))
        guard let id = info["DeviceID"] else { return }
        try await DMSetup.message(configuration.poolName, "delete \(id)")
    }

    func snapshotDeviceName(_ snapshot: String) -> String { "\(configuration.poolName)-s-\(snapshot)" }

    /// Activates a snapshot read-only (for reading it: backups, tests) and returns its device.
    public func activateSnapshot(_ name: String, info: [String: String]) async throws(ConvoyError) -> String {
        guard let id = info["DeviceID"], let size = info["Size"].flatMap(UInt64.init) else {
            throw ConvoyError(.stateFailure, "snapshot \(name) has no device id or size in its record")
        }
        let device = snapshotDeviceName(name)
        if !(await DMSetup.exists(device)) {
            _ = try await DMSetup.run("/sbin/dmsetup", ["create", device, "--readonly", "--table",
                                                        "0 \(size / 512) thin \(pool.device) \(id)"])
        }
        return "/dev/mapper/" + device
    }

    // MARK: Block backups

    public var blockSize: UInt64 { configuration.blockSectors * 512 }

    /// `thin_delta` between the two snapshots' devices (or `thin_dump`'s mapped blocks without a base), read from
    /// a metadata snapshot of the pool.
    public func changedBlocks(of snapshot: [String: String], since base: [String: String]?) async throws(ConvoyError)
        -> BlockChanges {
        guard let id = snapshot["DeviceID"] else {
            throw ConvoyError(.stateFailure, "the snapshot has no device id in its record")
        }
        let metadata = try await poolMetadata()
        if let baseID = base?["DeviceID"] {
            let delta = try await metadata.delta(from: baseID, to: id)
            return BlockChanges(read: delta.changed, unmapped: delta.unmapped)
        }
        return BlockChanges(read: try await metadata.mappedBlocks(of: id), unmapped: [])
    }

    /// Removes a snapshot's read-only device made by `activateSnapshot`.
    public func deactivateSnapshot(_ name: String) async throws(ConvoyError) {
        try await DMSetup.remove(snapshotDeviceName(name))
    }

    /// The device of a volume created blank for an image (`receivesImage`): every block unmapped, reading as zeros.
    public func deviceForImage(_ volume: DriverVolume) async throws(ConvoyError) -> String {
        try await activate(volume)
    }

    /// The pool's metadata, read through its one metadata snapshot.
    func poolMetadata() async throws(ConvoyError) -> ThinMetadata {
        ThinMetadata(poolName: configuration.poolName, metadataDevice: try await pool.metadataDevicePath(),
                     lock: metadataLock)
    }
}
