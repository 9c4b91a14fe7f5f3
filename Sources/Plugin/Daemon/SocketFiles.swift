import ConvoyCore
import Drivers
#if canImport(Glibc)
import Glibc
#endif

/// Preparing the paths of the two listening sockets: parents created, a stale socket left by a dead daemon
/// removed, a live one (another daemon) refused, anything that is not a socket left alone.
enum SocketFiles {
    static func prepare(_ path: String, option: String) throws(ConvoyError) {
        guard path.hasPrefix("/") else { throw .invalid("\(option): '\(path)' must be an absolute path") }
        guard path.utf8.count < 108 else {
            throw .invalid("\(option): '\(path)' is longer than a UNIX socket path may be (107 bytes)")
        }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try Filesystem.makeDirectory(String(path[..<slash]), mode: 0o755)
        }
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw .conflict("\(option): \(path) exists and is not a socket; remove it or choose another path")
        }
        if isServed(path) {
            throw .conflict("\(option): another process is serving \(path); "
                + "stop it first (is a convoy daemon with another --root running?)")
        }
        if unlink(path) != 0 && errno != ENOENT {
            throw ConvoyError(.unavailable, "\(option): cannot remove the stale socket \(path): "
                + "\(Filesystem.errnoText())")
        }
    }

    /// Restricts the socket to root, and to the members of `group` where the mode lets its group in.
    static func restrict(_ path: String, mode: mode_t, group: gid_t = 0) throws(ConvoyError) {
        if chown(path, 0, group) != 0 && getuid() == 0 {
            throw ConvoyError(.unavailable, "cannot give \(path) to root (group \(group)): \(Filesystem.errnoText())")
        }
        if chmod(path, mode) != 0 {
            throw ConvoyError(.unavailable, "cannot restrict \(path) to mode \(String(mode, radix: 8)): "
                + "\(Filesystem.errnoText())")
        }
    }

    /// The id of `--socket-group`: a group name, or a number.
    static func groupID(_ group: String) throws(ConvoyError) -> gid_t {
        if let entry = getgrnam(group) { return entry.pointee.gr_gid }
        if let number = gid_t(group) { return number }
        throw .invalid("--socket-group: no group named '\(group)' (getent group lists them)")
    }

    static func remove(_ path: String) {
        var info = stat()
        if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
    }

    private static func isServed(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return UnixSocketAddress.with(Array(path.utf8)) { connect(fd, $0, $1) == 0 } ?? false
    }
}
