import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The glusterfs driver's options (Convoy's names plus the health check's interval), validated when the daemon
/// starts, so a typo in a server name or a missing pool stops the daemon instead of the first create.
struct GlusterConfiguration: Sendable, Equatable {
    static let optionKeys: Set<String> = [
        "glusterfs.servers", "glusterfs.defaultvolumepool", "glusterfs.defaultvolumesize", "glusterfs.checkinterval",
    ]

    /// Where the pools are mounted and the FUSE clients log: `<root>/glusterfs`.
    var directory: String
    /// The first serves the volume file; the others are `backup-volfile-servers`.
    var servers: [String]
    var defaultPool: String
    var defaultVolumeSize: UInt64
    /// How often every pool mount is checked (and remounted when its FUSE client is gone).
    var checkInterval: Duration

    init(root: String, options: [String: String],
         resolve: (String) -> Bool = GlusterConfiguration.resolves) throws(ConvoyError) {
        directory = root + "/glusterfs"
        guard let list = options["glusterfs.servers"] else {
            throw .invalid("glusterfs.servers is required: name the gluster servers, comma-separated "
                + "(e.g. glusterfs.servers=gl1,gl2)")
        }
        servers = try Self.servers(list, resolve: resolve)
        guard let pool = options["glusterfs.defaultvolumepool"] else {
            throw .invalid("glusterfs.defaultvolumepool is required: "
                + "name the gluster volume that holds convoy's volumes")
        }
        defaultPool = try Self.pool(pool, option: "glusterfs.defaultvolumepool")
        defaultVolumeSize = try ByteSize.parse(options["glusterfs.defaultvolumesize"] ?? "100G",
                                               option: "glusterfs.defaultvolumesize")
        let interval = options["glusterfs.checkinterval"] ?? "10"
        guard let seconds = UInt32(interval), seconds > 0 else {
            throw .invalid("glusterfs.checkinterval: '\(interval)' is not a whole number of seconds greater than zero")
        }
        checkInterval = .seconds(Int(seconds))
    }

    /// A gluster volume name: one plain path component (it names the pool's mount directory too).
    static func pool(_ name: String, option: String) throws(ConvoyError) -> String {
        do {
            return try ObjectName.validate(name, kind: "gluster volume")
        } catch {
            throw .invalid("\(option): \(error.message)")
        }
    }

    static func servers(_ list: String, resolve: (String) -> Bool) throws(ConvoyError) -> [String] {
        let names = list.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty, !names.contains(where: \.isEmpty) else {
            throw .invalid("glusterfs.servers: '\(list)' has an empty name; "
                + "give host names or addresses separated by commas")
        }
        var seen = Set<String>()
        for name in names {
            // ':' separates backup-volfile-servers, '/' the volume in `server:/volume`.
            guard !name.contains(":"), !name.contains("/"), !name.contains(where: \.isWhitespace) else {
                throw .invalid("glusterfs.servers: '\(name)' is not a host name or IPv4 address "
                    + "(for IPv6, use a host name)")
            }
            guard seen.insert(name).inserted else { throw .invalid("glusterfs.servers: '\(name)' is named twice") }
            guard resolve(name) else {
                throw .invalid("glusterfs.servers: '\(name)' does not resolve; check the name (and /etc/hosts or DNS)")
            }
        }
        return names
    }

    static func resolves(_ host: String) -> Bool {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0 else { return false }
        freeaddrinfo(result)
        return true
    }
}
