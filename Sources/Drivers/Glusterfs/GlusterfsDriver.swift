import ConvoyCore

/// `glusterfs`: each volume is a directory `<name>` in a gluster volume (a "pool"), which the daemon mounts once
/// with the FUSE client under `<root>/glusterfs/mounts/<pool>`; the volume's mountpoint is that directory, so a
/// volume is reachable from every host that mounts the pool (scope `global`). Snapshots, backups and restores are
/// the daemon's file backups (`DirectoryBackedDriver`).
///
/// Sizes are recorded, and enforced by a gluster directory quota when the pool has quota enabled (then `df` in
/// the volume shows the size too); otherwise the volume's record says that its size is not enforced.
///
/// Pools stay mounted while the daemon runs and after it stops (containers keep using them); a volume's last
/// unmount leaves its pool alone, since other volumes share it. The hosts' daemons share one catalog of the
/// volumes, in the default pool (`.convoy`, SharedCatalog).
public struct GlusterfsDriver: DirectoryBackedDriver {
    public static let driverName = "glusterfs"
    public static var optionKeys: Set<String> { GlusterConfiguration.optionKeys }

    public let name = Self.driverName
    public let scope = VolumeScope.global
    public let volumeOptionKeys: Set<String> = ["pool"]
    /// True so that the daemon asks `isMounted` before reusing a mountpoint: a dead pool mount is then repaired
    /// by the next Mount instead of being handed to another container.
    public let mountsVolumes = true
    public var defaultVolumeSize: UInt64? { configuration.defaultVolumeSize }
    /// overlayfs refuses a FUSE filesystem as its upper layer (no tmpfile, no RENAME_WHITEOUT).
    public let holdsOverlayUpperLayer = false
    let configuration: GlusterConfiguration
    let pools: PoolMounts

    public init(context: DriverContext) throws(ConvoyError) {
        configuration = try GlusterConfiguration(root: context.root, options: context.options)
        pools = PoolMounts(configuration: configuration)
    }

    /// Mounts the default pool (a daemon that cannot reach it refuses to start, with the reason) and the pools an
    /// earlier run used, then checks them all every `glusterfs.checkinterval` seconds.
    public func start() async throws(ConvoyError) {
        try Filesystem.makeDirectory(pools.mountsDirectory, mode: 0o700)
        try await pools.ensureMounted(configuration.defaultPool)
        for pool in pools.previouslyUsedPools() where pool != configuration.defaultPool {
            try? await pools.ensureMounted(pool)
        }
        let (pools, interval) = (self.pools, configuration.checkInterval)
        Task.detached {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                await pools.checkAll()
            }
        }
    }

    public func info() -> [String: String] {
        ["Servers": configuration.servers.joined(separator: ","), "DefaultVolumePool": configuration.defaultPool,
         "DefaultVolumeSize": "\(configuration.defaultVolumeSize)", "MountsDirectory": pools.mountsDirectory,
         "CheckIntervalSeconds": "\(configuration.checkInterval.components.seconds)", "Scope": scope.rawValue]
    }

    /// The catalog every host's daemon shares (issue 19), in the default pool: one name space for the volumes
    /// of all pools, as the pools are one driver's.
    public var sharedCatalogDirectory: String? {
        (try? pools.mountpoint(of: configuration.defaultPool)).map { $0 + "/.convoy" }
    }

    /// The default pool's free space, as its FUSE mount reports it (the bricks' sum for a distributed volume).
    public func availableBytes() async throws(ConvoyError) -> UInt64? {
        try await pools.ensureMounted(configuration.defaultPool)
        return try Self.freeBytes(of: try pools.mountpoint(of: configuration.defaultPool))
    }

    // MARK: Paths

    func pool(of volume: DriverVolume) throws(ConvoyError) -> String {
        if let recorded = volume.driverInfo["Pool"] { return recorded }
        guard let requested = volume.options["pool"] else { return configuration.defaultPool }
        return try GlusterConfiguration.pool(requested, option: "pool")
    }

    func directory(of volume: DriverVolume) throws(ConvoyError) -> String {
        try PathGuard.child(of: try pools.mountpoint(of: try pool(of: volume)), named: volume.name)
    }

    /// The volume's directory, refused while its pool's mount does not answer: a dead or missing mount must never
    /// be read as an empty volume.
    public func dataDirectory(of volume: DriverVolume) throws(ConvoyError) -> String {
        let pool = try pool(of: volume)
        let directory = try directory(of: volume)
        switch PoolProbe.probe(try pools.mountpoint(of: pool)) {
        case .connected: return directory
        case .notMounted:
            throw ConvoyError(.unavailable, "gluster volume \(pool) is not mounted; "
                + "mount volume \(volume.name) (`convoy mount \(volume.name)`) to mount it, "
                + "or see `convoy inspect \(volume.name)`")
        case .failing(let answer):
            throw ConvoyError(.unavailable, "gluster volume \(pool) answers '\(answer)'; "
                + "convoy remounts it at its next check (see `convoy inspect \(volume.name)`)")
        }
    }

    // MARK: Volumes

    public func createVolume(_ volume: DriverVolume) async throws(ConvoyError) -> [String: String] {
        let pool = try pool(of: volume)
        try await pools.ensureMounted(pool)
        let directory = try directory(of: volume)
        // 0755: containers running as any user must be able to reach the data, as with Docker's local driver.
        do {
            try Filesystem.makeNewDirectory(directory, mode: 0o755)
        } catch where error.kind == .conflict {
            // Other hosts' convoy daemons share the pool, and each keeps its own index.
            throw .conflict("gluster volume \(pool) already holds a directory \(volume.name) "
                + "(a volume of a convoy daemon on another host, or one left behind); "
                + "choose another name, or remove the directory from the pool if nothing uses it")
        }
        let size = volume.size ?? configuration.defaultVolumeSize
        var info = ["Pool": pool, "Path": directory, "Size": "\(size)"]
        do {
            try await GlusterCommands.limit(pool: pool, directory: volume.name, bytes: size)
            info["SizeEnforced"] = "true"
        } catch {
            info["SizeEnforced"] = "false"
            info["SizeNotEnforcedBecause"] = error.message.contains("Quota is disabled")
                ? "quota is not enabled on gluster volume \(pool) "
                    + "(`gluster volume quota \(pool) enable` enforces the sizes of volumes created afterwards)"
                : error.message
        }
        return info
    }

    /// Removes the directory (never crossing into a mount inside it) and its quota. Refused while the pool's
    /// mount does not answer: deleting from an empty mount point would claim a deletion that never happened.
    public func deleteVolume(_ volume: DriverVolume) async throws(ConvoyError) {
        let pool = try pool(of: volume)
        try await pools.ensureMounted(pool)
        try Filesystem.removeTree(try directory(of: volume))
        if volume.driverInfo["SizeEnforced"] == "true" {
            try? await GlusterCommands.removeLimit(pool: pool, directory: volume.name)
        }
    }

    public func mountVolume(_ volume: DriverVolume) async throws(ConvoyError) -> String {
        try await pools.ensureMounted(try pool(of: volume))
        return try Filesystem.volumeDirectory(try directory(of: volume), of: volume.name)
    }

    /// Nothing to undo: the pool is shared by the other volumes in it.
    public func unmountVolume(_ volume: DriverVolume) async throws(ConvoyError) {}

    /// Only a pool that answers can tell: while it does not, the volume is kept (never forgotten for an outage).
    public func dataExists(_ volume: DriverVolume) -> Bool {
        guard let pool = try? pool(of: volume), let mountpoint = try? pools.mountpoint(of: pool),
              let directory = try? directory(of: volume) else { return false }
        guard PoolProbe.probe(mountpoint) == .connected else { return true }
        return Filesystem.isDirectory(directory)
    }

    public func isMounted(_ volume: DriverVolume) -> Bool {
        (try? dataDirectory(of: volume)).map(Filesystem.isDirectory) ?? false
    }

    // MARK: Status

    /// The pool's health as users should see it in `docker volume inspect` and `convoy inspect`.
    public func status(of volume: DriverVolume) async -> [String: String] {
        guard let pool = try? pool(of: volume), let mountpoint = try? pools.mountpoint(of: pool) else { return [:] }
        var status = ["pool": pool]
        switch await PoolProbe.probeOffPool(mountpoint) {
        case .connected: status["poolMount"] = "connected"
        case .notMounted: status["poolMount"] = "not mounted"
        case .failing(let answer): status["poolMount"] = "failing: \(answer)"
        }
        let health = await pools.health(of: pool)
        if let problem = health.problem {
            status["poolProblem"] = "\(problem) (since \(health.problemSince ?? "?")); "
                + "convoy remounts it every \(configuration.checkInterval.components.seconds) s "
                + "and at the next operation"
        } else if status["poolMount"] != "connected" {
            status["poolProblem"] = "convoy remounts it at its next check "
                + "(every \(configuration.checkInterval.components.seconds) s) or the next operation"
        }
        if let failure = health.remountFailure { status["poolRemountFailure"] = failure }
        if let recovery = health.lastRecovery { status["poolLastRecovery"] = recovery }
        if volume.driverInfo["SizeEnforced"] == "false" {
            status["sizeNotEnforced"] = volume.driverInfo["SizeNotEnforcedBecause"] ?? "no quota"
        }
        return status
    }
}
