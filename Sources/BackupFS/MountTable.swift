#if canImport(Glibc)
import Glibc
#endif

/// The kernel's side of FUSE mounts: what is mounted where (/proc/self/mountinfo), a connection's controls
/// (fusectl) and its read-ahead (the mount's backing device info in sysfs).
enum MountTable {
    struct Mount: Equatable {
        var major: UInt32
        var minor: UInt32
        var mountpoint: String
        var type: String

        /// The connection's name under /sys/fs/fuse/connections: the kernel's dev_t (major << 20 | minor).
        var connection: UInt32 { major << 20 | minor }
    }

    /// The mount whose mount point is `path` (the topmost one, if several are stacked); nil when `path` is not
    /// a mount point. `path` must be canonical (see `canonical`).
    static func mount(at path: String) -> Mount? {
        guard let bytes = readFile("/proc/self/mountinfo") else { return nil }
        var found: Mount?
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            // id parent major:minor root mountpoint options [optional fields] - type source superoptions
            let fields = line.split(separator: UInt8(ascii: " "))
            guard fields.count > 4, let separator = fields.firstIndex(where: { $0.elementsEqual("-".utf8) }),
                  separator + 1 < fields.count else { continue }
            let device = fields[2].split(separator: UInt8(ascii: ":"))
            guard device.count == 2, let major = UInt32(String(decoding: device[0], as: UTF8.self)),
                  let minor = UInt32(String(decoding: device[1], as: UTF8.self)) else { continue }
            let mountpoint = unescape(fields[4])
            if mountpoint == path {
                found = Mount(major: major, minor: minor, mountpoint: mountpoint,
                              type: String(decoding: fields[separator + 1], as: UTF8.self))
            }
        }
        return found
    }

    /// The path as mountinfo spells it: absolute, symlinks resolved. When the path itself cannot be resolved
    /// (a mount point that no longer answers), only its parent is.
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
    static func setReadAhead(_ mount: Mount, kilobytes: Int) -> Bool {
        writeFile("/sys/class/bdi/\(mount.major):\(mount.minor)/read_ahead_kb", "\(kilobytes)")
    }

    /// mountinfo escapes space, tab, newline and backslash as \ooo (octal).
    private static func unescape(_ field: ArraySlice<UInt8>) -> String {
        let bytes = Array(field)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\\"), index + 3 < bytes.count,
               let code = UInt8(String(decoding: bytes[(index + 1)...(index + 3)], as: UTF8.self), radix: 8) {
                out.append(code)
                index += 4
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return count == 0 ? bytes : nil }
            bytes.append(contentsOf: buffer[0..<count])
        }
    }

    private static func writeFile(_ path: String, _ text: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
    }
}
