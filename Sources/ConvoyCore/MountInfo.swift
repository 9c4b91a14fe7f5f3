#if canImport(Glibc)
import Glibc
#endif

/// What is mounted where, from /proc/self/mountinfo (which also lists mounts whose filesystem no longer answers).
/// One reader for the FUSE bridge, the drivers and the daemon.
public enum MountInfo {
    public struct Mount: Equatable, Sendable {
        public var major: UInt32
        public var minor: UInt32
        public var mountpoint: String
        public var type: String
        /// What is mounted: a device path for block filesystems.
        public var source: String
    }

    /// The mount whose mount point is `path` (the topmost one, if several are stacked); nil when `path` is not a
    /// mount point. `path` must be spelled as mountinfo does: absolute, symlinks resolved.
    public static func mount(at path: String) -> Mount? {
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
                let source = separator + 2 < fields.count ? unescape(fields[separator + 2]) : ""
                found = Mount(major: major, minor: minor, mountpoint: mountpoint,
                              type: String(decoding: fields[separator + 1], as: UTF8.self), source: source)
            }
        }
        return found
    }

    public static func isMountPoint(_ path: String) -> Bool { mount(at: path) != nil }

    /// mountinfo escapes space, tab, newline and backslash as \ooo (octal).
    static func unescape(_ field: ArraySlice<UInt8>) -> String {
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
}
