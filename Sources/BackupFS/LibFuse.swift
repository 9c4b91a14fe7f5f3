import CFuse
#if canImport(Glibc)
import Glibc
#endif

/// Facts about the libfuse3 the daemon is linked with and whether the kernel side is usable. The BackupFS
/// filesystems (browse a backup, lazy restore) are built on this module; `convoy info` reports its state so a
/// missing /dev/fuse is visible before a user needs it.
public enum LibFuse {
    /// The libfuse package version, e.g. "3.14.0".
    public static var version: String {
        guard let cString = fuse_pkgversion() else { return "unknown" }
        return String(cString: cString)
    }

    /// The API level the bridge is compiled against (FUSE_USE_VERSION in the CFuse shim).
    public static let apiLevel = 312

    /// True when /dev/fuse exists and can be opened for reading and writing, as a mount would need.
    public static var deviceUsable: Bool {
        let fd = open("/dev/fuse", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }

    public static var summary: String {
        "libfuse \(version) (API \(apiLevel)), /dev/fuse \(deviceUsable ? "usable" : "not usable")"
    }
}
