import ConvoyCore
#if canImport(Glibc)
import Glibc
#endif

/// The kernel's side of FUSE mounts: a mount's canonical path, its connection's controls (fusectl) and its
/// read-ahead (the mount's backing device info in sysfs). What is mounted where is `MountInfo`'s.
enum MountTable {
    /// The connection's name under /sys/fs/fuse/connections: the kernel's dev_t (major << 20 | minor).
    static func connection(of mount: MountInfo.Mount) -> UInt32 { mount.major << 20 | mount.minor }

    /// The path as mountinfo spells it: absolute, symlinks resolved. When the path itself cannot be resolved
    /// (a mount point that no longer answers), only its parent is.
    /// `path` with its parent resolved and its last name kept as it is: never stats `path` itself (a FUSE mount
    /// no one serves yet would hold the call).
    static func canonicalParent(_ path: String) -> String {
        var trimmed = path
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let slash = trimmed.lastIndex(of: "/"), slash != trimmed.startIndex else { return trimmed }
        let name = trimmed[trimmed.index(after: slash)...]
        return canonical(String(trimmed[..<slash])) + "/" + name
    }

    static func canonical(_ path: String) -> String {
        if let resolved = realpath(path, nil) {
            defer { free(resolved) }
            return String(cString: resolved)
        }
        var trimmed = path
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return canonical("./" + trimmed) }
        let parent = slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
        let name = trimmed[trimmed.index(after: slash)...]
        guard !name.isEmpty, let resolved = realpath(parent, nil) else { return trimmed }
        defer { free(resolved) }
        let base = String(cString: resolved)
        return base == "/" ? "/" + name : base + "/" + name
    }

    /// Aborts a FUSE connection: the kernel fails its pending and future requests and the serving loop sees
    /// the device close. Needed when a lazily detached mount is still held by open files. Uses the fusectl
    /// filesystem, mounting it privately for the moment when it is not mounted at its usual place.
    static func abortConnection(_ connection: UInt32) -> Bool {
        if writeFile("/sys/fs/fuse/connections/\(connection)/abort", "1") { return true }
        var template = Array("/tmp/convoy-fusectl-XXXXXX".utf8CString)
        guard let directory = template.withUnsafeMutableBufferPointer({ buffer in
            buffer.baseAddress.flatMap(mkdtemp).map { String(cString: $0) }
        }) else { return false }
        defer { rmdir(directory) }
        guard Glibc.mount("fusectl", directory, "fusectl", 0, nil) == 0 else { return false }
        defer { umount2(directory, Int32(MNT_DETACH)) }
        return writeFile("\(directory)/\(connection)/abort", "1")
    }

    /// Sets the kernel's read-ahead for a mount (its backing device info). FUSE's default of 128 KiB keeps
    /// requests small; sequential reads are about twice as fast with 1 MiB.
    @discardableResult
    static func setReadAhead(_ mount: MountInfo.Mount, kilobytes: Int) -> Bool {
        writeFile("/sys/class/bdi/\(mount.major):\(mount.minor)/read_ahead_kb", "\(kilobytes)")
    }

    private static func writeFile(_ path: String, _ text: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
    }
}
