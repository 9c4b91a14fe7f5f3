import ConvoyCore

/// `vfs`: each volume is a directory `<vfs.path>/<name>` (a local disk or an NFS mount); its mountpoint is that
/// directory. `size` is recorded and shown, not enforced: a plain directory has no quota. With `vfs.shared=true`
/// the directory is one that several hosts mount (NFS, a gluster FUSE mount): the volumes are every host's
/// (`global`), catalogued in `<vfs.path>/.convoy` (SharedCatalog), which no volume name can reach (names never
/// start with a dot).
public struct VFSDriver: DirectoryBackedDriver {
    public static let driverName = "vfs"
    public static let optionKeys: Set<String> = ["vfs.path", "vfs.shared"]

    public let name = Self.driverName
    public let scope: VolumeScope
    public let volumeOptionKeys: Set<String> = []
    public let mountsVolumes = false
    public let path: String

    public init(context: DriverContext) throws(ConvoyError) {
        let configured = context.options["vfs.path"] ?? context.root + "/vfs"
        path = try PathGuard.absoluteDirectory(configured, option: "vfs.path")
        switch context.options["vfs.shared"] ?? "false" {
        case "true": scope = .global
        case "false": scope = .local
        case let other: throw .invalid("vfs.shared: '\(other)' is neither true nor false")
        }
        // A shared directory is every host's: other hosts' daemons must be able to enter it.
        try Filesystem.makeDirectory(path, mode: scope == .global ? 0o755 : 0o700)
    }

    public func info() -> [String: String] {
        ["Path": path, "Scope": scope.rawValue, "SizeEnforced": "false"]
    }

    public var sharedCatalogDirectory: String? { scope == .global ? path + "/.convoy" : nil }

    public func availableBytes() async throws(ConvoyError) -> UInt64? { try Self.freeBytes(of: path) }

    private func directory(of volume: DriverVolume) throws(ConvoyError) -> String {
        try PathGuard.child(of: path, named: volume.name)
    }

    public func dataDirectory(of volume: DriverVolume) throws(ConvoyError) -> String {
        try directory(of: volume)
    }

    public func createVolume(_ volume: DriverVolume) async throws(ConvoyError) -> [String: String] {
        let dir = try directory(of: volume)
        // 0755: containers running as any user must be able to reach the data, as with Docker's local driver.
        try Filesystem.makeNewDirectory(dir, mode: 0o755)
        return ["Path": dir]
    }

    public func deleteVolume(_ volume: DriverVolume) async throws(ConvoyError) {
        try Filesystem.removeTree(try directory(of: volume))
    }

    public func mountVolume(_ volume: DriverVolume) async throws(ConvoyError) -> String {
        try Filesystem.volumeDirectory(try directory(of: volume), of: volume.name)
    }

    public func unmountVolume(_ volume: DriverVolume) async throws(ConvoyError) {}

    public func dataExists(_ volume: DriverVolume) -> Bool {
        guard let dir = try? directory(of: volume) else { return false }
        return Filesystem.isDirectory(dir)
    }

    /// A vfs volume is available whenever its directory exists.
    public func isMounted(_ volume: DriverVolume) -> Bool { dataExists(volume) }
}
