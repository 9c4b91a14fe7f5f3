import ConvoyCore
#if canImport(Glibc)
import Glibc
#endif

/// The driver's options (Convoy's names), validated when the daemon starts.
struct ThinPoolConfiguration: Sendable, Equatable {
    static let optionKeys: Set<String> = [
        "dm.datadev", "dm.metadatadev", "dm.thinpoolname", "dm.thinpoolblocksize", "dm.defaultvolumesize", "dm.fs",
    ]
    static let filesystems = BlockFilesystem.supported

    var directory: String
    var poolName: String
    var dataDevice: String?
    var metadataDevice: String?
    /// In 512-byte sectors.
    var blockSectors: UInt64
    var defaultVolumeSize: UInt64
    var defaultFilesystem: String

    init(root: String, options: [String: String]) throws(ConvoyError) {
        directory = root + "/devicemapper"
        poolName = try ObjectName.validate(options["dm.thinpoolname"] ?? "convoy-pool", kind: "thin pool")
        for key in ["dm.datadev", "dm.metadatadev"] {
            if let device = options[key], !device.hasPrefix("/") {
                throw .invalid("\(key): '\(device)' must be an absolute path to a block device")
            }
        }
        dataDevice = options["dm.datadev"]
        metadataDevice = options["dm.metadatadev"]
        guard (dataDevice == nil) == (metadataDevice == nil) else {
            throw .invalid("give both dm.datadev and dm.metadatadev, or neither "
                + "(then sparse files under \(directory) are used)")
        }
        let blockSize = try ByteSize.parse(options["dm.thinpoolblocksize"] ?? "2M", option: "dm.thinpoolblocksize")
        // dm-thin: a multiple of 64 KiB between 64 KiB and 1 GiB.
        guard blockSize % (64 << 10) == 0, (64 << 10)...(1 << 30) ~= blockSize else {
            throw .invalid("dm.thinpoolblocksize: \(blockSize) bytes is not a multiple of 64K between 64K and 1G")
        }
        blockSectors = blockSize / 512
        defaultVolumeSize = try ByteSize.parse(options["dm.defaultvolumesize"] ?? "100G",
                                               option: "dm.defaultvolumesize")
        guard defaultVolumeSize >= 16 << 20 else {
            throw .invalid("dm.defaultvolumesize: at least 16M (a filesystem needs room)")
        }
        defaultFilesystem = options["dm.fs"] ?? "ext4"
        guard Self.filesystems.contains(defaultFilesystem) else {
            throw .invalid("dm.fs: '\(defaultFilesystem)' is not one of "
                + "\(Self.filesystems.sorted().joined(separator: ", "))")
        }
    }
}

/// The thin pool: its data and metadata devices (given, or sparse files attached to loop devices), activated as a
/// `thin-pool` target. Activation is idempotent: a pool already active (a daemon restart) is used as it is.
struct ThinPool: Sendable {
    let configuration: ThinPoolConfiguration
    /// Sparse files used when no devices are given: big enough never to be the limit on a test machine.
    static let sparseDataSize: UInt64 = 100 << 30
    static let sparseMetadataSize: UInt64 = 1 << 30
    /// Free data blocks below which the kernel reports the pool low on space.
    static let lowWaterBlocks = 32768

    var device: String { "/dev/mapper/" + configuration.poolName }

    func activate() async throws(ConvoyError) {
        try Filesystem.makeDirectory(configuration.directory, mode: 0o700)
        if await DMSetup.exists(configuration.poolName) {
            try await checkHealthy()
            return
        }
        let data = try await attach(configuration.dataDevice, file: configuration.directory + "/data.img",
                                    size: Self.sparseDataSize)
        let metadata = try await attach(configuration.metadataDevice, file: configuration.directory + "/metadata.img",
                                        size: Self.sparseMetadataSize)
        _ = try? await DMSetup.run("/sbin/modprobe", ["dm-thin-pool"])
        let sectors = try await DMSetup.sectors(data)
        // Newly provisioned blocks are zeroed (no skip_block_zeroing): a new volume must never read a deleted one's
        // data.
        let table = "0 \(sectors) thin-pool \(metadata) \(data) \(configuration.blockSectors) \(Self.lowWaterBlocks) 0"
        do {
            try await DMSetup.create(configuration.poolName, table: table)
        } catch {
            throw ConvoyError(.driverFailure, "cannot activate thin pool \(configuration.poolName): \(error.message). "
                + "If its metadata is damaged, check it with `thin_check \(metadata)` "
                + "(and repair with `thin_repair`) before starting convoy again")
        }
        try await checkHealthy()
    }

    /// The metadata device: the given one, or the loop device of the sparse metadata file.
    func metadataDevicePath() async throws(ConvoyError) -> String {
        if let device = configuration.metadataDevice { return device }
        let file = configuration.directory + "/metadata.img"
        guard let device = try await LoopDevice.attached(to: file) else {
            throw ConvoyError(.driverFailure, "the metadata file \(file) of thin pool \(configuration.poolName) "
                + "is not attached to a loop device")
        }
        return device
    }

    /// A pool that needs a check or has failed is refused with the command that repairs it.
    /// Data blocks the pool has not mapped, in bytes.
    func freeDataBytes() async throws(ConvoyError) -> UInt64 {
        let status = try await DMSetup.status(configuration.poolName)
        guard let free = Self.freeDataBlocks(status: status) else {
            throw ConvoyError(.driverFailure, "cannot read the free data blocks of thin pool "
                + "\(configuration.poolName) from its status '\(status)'")
        }
        return free * configuration.blockSectors * 512
    }

    /// From `dmsetup status` of a thin pool: `0 <len> thin-pool <transaction> <used>/<total> metadata blocks,
    /// then <used>/<total> data blocks, ...`.
    static func freeDataBlocks(status: String) -> UInt64? {
        let fields = status.split(separator: " ")
        guard fields.count > 5, fields[2] == "thin-pool" else { return nil }
        let data = fields[5].split(separator: "/")
        guard data.count == 2, let used = UInt64(data[0]), let total = UInt64(data[1]), used <= total else {
            return nil
        }
        return total - used
    }

    func checkHealthy() async throws(ConvoyError) {
        let status = try await DMSetup.status(configuration.poolName)
        if status.contains("needs_check") || status.contains("Fail") || status.contains(" ro ") {
            throw ConvoyError(.driverFailure, "thin pool \(configuration.poolName) is not writable "
                + "(status: \(status.trimmingCharacters(in: .whitespacesAndNewlines))); "
                + "deactivate it (`dmsetup remove`) and run `thin_check` on its metadata device")
        }
    }

    /// The given device, or a sparse file attached to a loop device (the one already attached after a restart).
    private func attach(_ device: String?, file: String, size: UInt64) async throws(ConvoyError) -> String {
        if let device { return device }
        if access(file, F_OK) != 0 {
            let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0, ftruncate(fd, off_t(size)) == 0 else {
                let message = Filesystem.errnoText()
                if fd >= 0 { close(fd) }
                throw ConvoyError(.driverFailure, "cannot create the sparse file \(file): \(message)")
            }
            fsync(fd)
            close(fd)
        }
        if let device = try await LoopDevice.attached(to: file) { return device }
        return try await LoopDevice.attach(file, readOnly: false)
    }
}
