import Backupstore
import ConvoyCore
import Drivers
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The volume catalog of a driver whose storage several hosts mount (`vfs.shared=true`): kept in that storage
/// itself, so a volume created on any host is known to every host (issue 19).
///
///     <catalog>/volumes/<name>.json               the volume, made once by `link(2)` (exactly one creator wins)
///     <catalog>/references/<name>/<host>.json     a host's mount references to it, rewritten as they change
///     <catalog>/hosts/<host>.json                 a host's lease, renewed on a timer (SharedHosts)
///
/// A host's references count while its lease is live, so a host that died stops holding volumes when its lease
/// expires. Expiry compares one host's clock with another's: hosts are assumed to agree within a few seconds
/// (NTP); docs/design.md says what breaks beyond that. Every file is written whole under a temporary name, synced,
/// then renamed or linked into place, so a reader never sees half a record.
public struct SharedCatalog: Sendable {
    public let directory: String

    public init(directory: String) throws(ConvoyError) {
        self.directory = directory
        for sub in ["", "/volumes", "/references", "/hosts"] {
            try Filesystem.makeDirectory(directory + sub, mode: 0o755)
        }
    }

    /// A volume as every host knows it.
    public struct Volume: Codable, Sendable, Equatable {
        public var name: String
        public var driver: String
        public var size: UInt64
        public var createdAt: String
        public var options: [String: String]
        public var driverInfo: [String: String]
        /// The host that created it.
        public var host: String
    }

    /// A host's mount references to one volume.
    struct References: Codable {
        var host: String
        var ids: [String]
    }

    // MARK: Volumes

    public enum Claim: Sendable, Equatable {
        case claimed
        /// Another host (or an earlier call) made it first.
        case exists(Volume)
    }

    /// Records `volume` unless the name is taken: of two hosts claiming one name at once, exactly one gets
    /// `claimed` (link(2) fails on an existing name, on NFS and gluster alike).
    public func claim(_ volume: Volume) throws(ConvoyError) -> Claim {
        let path = volumePath(volume.name)
        let temporary = try writeTemporary(volume, near: path)
        defer { unlink(temporary) }
        if link(temporary, path) == 0 {
            syncDirectory(of: path)
            return .claimed
        }
        let code = errno
        guard code == EEXIST, let existing = try self.volume(volume.name) else {
            throw ConvoyError(.driverFailure, "cannot record volume \(volume.name) in the shared catalog "
                + "\(directory): \(Filesystem.errnoText(code))")
        }
        return .exists(existing)
    }

    public func volume(_ name: String) throws(ConvoyError) -> Volume? {
        try read(Volume.self, at: volumePath(name))
    }

    /// Rewrites a claimed volume's entry (its driver info, once the driver has made it).
    public func update(_ volume: Volume) throws(ConvoyError) {
        try replace(volume, at: volumePath(volume.name))
    }

    public func volumes() throws(ConvoyError) -> [Volume] {
        var result: [Volume] = []
        for name in jsonNames(in: directory + "/volumes") {
            if let volume = try read(Volume.self, at: volumePath(name)) { result.append(volume) }
        }
        return result.sorted { $0.name < $1.name }
    }

    /// Removes the volume and every host's references to it (the caller checked that none is live).
    public func forget(_ name: String) throws(ConvoyError) {
        let references = directory + "/references/" + name
        for host in jsonNames(in: references) { unlink(references + "/" + host + ".json") }
        rmdir(references)
        guard unlink(volumePath(name)) == 0 || errno == ENOENT else {
            throw ConvoyError(.driverFailure, "cannot remove volume \(name) from the shared catalog \(directory): "
                + Filesystem.errnoText())
        }
        syncDirectory(of: volumePath(name))
    }

    // MARK: References

    /// Records this host's references to `name` (none: the file goes).
    public func setReferences(_ ids: [String], to name: String, host: String) throws(ConvoyError) {
        let folder = directory + "/references/" + name
        let path = folder + "/" + host + ".json"
        if ids.isEmpty {
            guard unlink(path) == 0 || errno == ENOENT else {
                throw ConvoyError(.driverFailure, "cannot update references in \(directory): \(Filesystem.errnoText())")
            }
            return
        }
        try Filesystem.makeDirectory(folder, mode: 0o755)
        try replace(References(host: host, ids: ids), at: path)
    }

    /// Other hosts' references to `name` that count: those of hosts whose lease is live at `now`.
    public func liveReferences(to name: String, besides host: String,
                               now: Date = Date()) throws(ConvoyError) -> [(host: String, count: Int)] {
        let folder = directory + "/references/" + name
        var result: [(host: String, count: Int)] = []
        for other in jsonNames(in: folder) where other != host {
            guard let references = try read(References.self, at: folder + "/" + other + ".json"),
                  !references.ids.isEmpty, let lease = try hostLease(other), lease.isLive(at: now) else { continue }
            result.append((other, references.ids.count))
        }
        return result.sorted { $0.host < $1.host }
    }

    // MARK: Host leases

    public struct HostLease: Codable, Sendable, Equatable {
        public var host: String
        public var expiresAt: Double
        /// Which process holds it: a daemon restarted on the same machine takes over its own dead lease at once.
        public var writer: WriterIdentity

        public func isLive(at now: Date = Date()) -> Bool { expiresAt > now.timeIntervalSince1970 }
    }

    public func hostLease(_ host: String) throws(ConvoyError) -> HostLease? {
        try read(HostLease.self, at: directory + "/hosts/" + host + ".json")
    }

    public func writeHostLease(_ lease: HostLease) throws(ConvoyError) {
        try replace(lease, at: directory + "/hosts/" + lease.host + ".json")
    }

    // MARK: Files

    private func volumePath(_ name: String) -> String { directory + "/volumes/" + name + ".json" }

    /// Names of the `.json` files in `folder`, without the extension (temporary files start with `.`).
    private func jsonNames(in folder: String) -> [String] {
        (PosixFile.entries(in: folder) ?? []).map(\.name)
            .filter { !$0.hasPrefix(".") && $0.hasSuffix(".json") }
            .map { String($0.dropLast(5)) }
    }

    /// The record at `path`; nil only when the catalog answers that there is none. A catalog that cannot be
    /// reached (the shared storage unmounted, a dead FUSE or NFS mount) is an error, never an absence: a host
    /// must not forget a volume because its storage is away.
    private func read<T: Decodable>(_ type: T.Type, at path: String) throws(ConvoyError) -> T? {
        // A file another host replaced since this host looked it up answers ESTALE (NFS, gluster): looked up again.
        var attempts = 0
        var (data, code) = Self.contents(of: path)
        if data == nil, code == ENOENT {
            // An NFS client keeps "no such file" answers while it believes the directory unchanged (its attribute
            // cache, 30 s or more by default): opening the directory revalidates it (close-to-open), so a record
            // another host made since is seen. Only on a miss: a found record was revalidated by its own open.
            Self.revalidate(directory: (path as NSString).deletingLastPathComponent)
            (data, code) = Self.contents(of: path)
        }
        while data == nil, code == ESTALE, attempts < 3 {
            attempts += 1
            (data, code) = Self.contents(of: path)
        }
        guard let data else {
            var info = stat()
            guard code == ENOENT, stat(directory + "/volumes", &info) == 0 else {
                throw ConvoyError(.unavailable, "the shared catalog \(directory) cannot be read "
                    + "(\(Filesystem.errnoText(code))); is the shared storage mounted?")
            }
            return nil
        }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw ConvoyError(.driverFailure, "the shared catalog's \(path) is damaged (\(error)); "
                + "remove it if no host uses what it describes")
        }
    }

    private static func revalidate(directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { close(fd) }
    }

    /// A small file's bytes, or the errno that stopped reading them.
    private static func contents(of path: String) -> (Data?, Int32) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return (nil, errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = Glibc.read(fd, &buffer, buffer.count)
            if count < 0 {
                if errno == EINTR { continue }
                return (nil, errno)
            }
            if count == 0 { return (Data(bytes), 0) }
            bytes += buffer[0..<count]
        }
    }

    private func replace(_ value: some Encodable, at path: String) throws(ConvoyError) {
        let temporary = try writeTemporary(value, near: path)
        guard rename(temporary, path) == 0 else {
            let text = Filesystem.errnoText()
            unlink(temporary)
            throw ConvoyError(.driverFailure, "cannot write \(path): \(text)")
        }
        syncDirectory(of: path)
    }

    /// `value` as JSON in a synced temporary file beside `path` (`.<file>.tmp-<random>`); returns its path.
    private func writeTemporary(_ value: some Encodable, near path: String) throws(ConvoyError) -> String {
        let folder = (path as NSString).deletingLastPathComponent
        let file = (path as NSString).lastPathComponent
        let temporary = folder + "/." + file + ".tmp-" + ObjectName.generate(prefix: "w")
        let data: Data
        do { data = try JSONEncoder().encode(value) } catch {
            throw ConvoyError(.internalFailure, "cannot encode a record for \(path): \(error)")
        }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ConvoyError(.driverFailure, "cannot write in \(folder): \(Filesystem.errnoText())") }
        defer { close(fd) }
        do {
            try PosixFile.writeAll(fd, Array(data), at: 0, path: temporary)
        } catch {
            unlink(temporary)
            throw error
        }
        guard fsync(fd) == 0 else {
            let text = Filesystem.errnoText()
            unlink(temporary)
            throw ConvoyError(.driverFailure, "cannot sync \(temporary): \(text)")
        }
        return temporary
    }

    private func syncDirectory(of path: String) {
        let fd = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}
