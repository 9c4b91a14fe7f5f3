import ConvoyCore
import Drivers
import GRPCCore
#if canImport(Glibc)
import Glibc
#endif

/// The bind mounts CSI's Node service makes: a volume's mountpoint onto the CO's staging path, the staging path
/// onto each pod's target path. The CO (kubelet, root) names the paths; they must be absolute and plain, and
/// what stands there must be a directory, never a symlink (followed, it would mount over another place).
enum CSIMounts {
    /// Checks `path` and makes it a directory when it does not exist.
    static func prepareDirectory(_ path: String, field: String) throws(RPCError) {
        try checkPath(path, field: field)
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw RPCError(code: .failedPrecondition, message: "\(field) \(path) is not a directory")
            }
            return
        }
        guard errno == ENOENT else { throw failure("inspect", path) }
        do {
            try Filesystem.makeDirectory(path, mode: 0o750)
        } catch {
            throw CSIErrors.status(error)
        }
    }

    static func checkPath(_ path: String, field: String) throws(RPCError) {
        guard path.hasPrefix("/"), !path.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }),
              !path.utf8.contains(0) else {
            throw CSIErrors.invalid("\(field) '\(path)' must be an absolute path without . or ..")
        }
    }

    /// Whether something is mounted on `path`. The mount table spells paths with symlinks resolved, and a
    /// kubelet root is often reached through one (`/var/lib/kubelet` on another disk).
    static func isMounted(_ path: String) -> Bool {
        // A symlink in the last place is never taken for what it points at.
        var info = stat()
        guard lstat(path, &info) == 0 else {
            // A mount whose filesystem died (a FUSE client killed) answers ENOTCONN even to lstat: it is still a
            // mount, to be found through its parent, which answers.
            guard errno == ENOTCONN || errno == EIO, let slash = path.lastIndex(of: "/") else { return false }
            let parent = slash == path.startIndex ? "/" : String(path[..<slash])
            guard let resolved = realpath(parent, nil) else { return false }
            defer { free(resolved) }
            let real = String(cString: resolved)
            return MountInfo.isMountPoint((real == "/" ? "" : real) + "/" + path[path.index(after: slash)...])
        }
        // A directory, or (block access) a file with a device bound on it; never a symlink.
        let kind = info.st_mode & S_IFMT
        guard kind == S_IFDIR || kind == S_IFREG || kind == S_IFBLK, let resolved = realpath(path, nil) else {
            return false
        }
        defer { free(resolved) }
        return MountInfo.isMountPoint(String(cString: resolved))
    }

    /// Whether `path` is a regular file (no symlink): the empty file a block volume's device was bound on.
    static func isPlainFile(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
    }

    /// Whether `target` is a mount of `source`'s directory (same device and inode, as a bind mount shows it).
    static func isBound(_ target: String, to source: String) -> Bool {
        guard isMounted(target) else { return false }
        var a = stat(), b = stat()
        return stat(target, &a) == 0 && stat(source, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino
    }

    /// Bind-mounts `source` on `target`, read-only when asked and with `flags` (`CSIMountFlags`): a bind mount
    /// takes them only by a remount.
    static func bind(_ source: String, on target: String, readOnly: Bool, flags extra: UInt = 0) throws(RPCError) {
        guard mount(source, target, nil, UInt(MS_BIND), nil) == 0 else {
            throw failure("bind-mount \(source) on", target)
        }
        if readOnly || extra != 0 {
            let flags = UInt(MS_BIND) | UInt(MS_REMOUNT) | (readOnly ? UInt(MS_RDONLY) : 0) | extra
            guard mount(nil, target, nil, flags, nil) == 0 else {
                let error = failure("apply the mount flags to", target)
                _ = umount2(target, 0)
                throw error
            }
        }
    }

    /// Unmounts `target` if something is mounted there; a path that is not a mount point is fine.
    static func unmount(_ target: String) throws(RPCError) {
        guard isMounted(target) else { return }
        guard umount2(target, Int32(UMOUNT_NOFOLLOW)) == 0 || errno == EINVAL || errno == ENOENT else {
            throw failure("unmount", target)
        }
    }

    private static func failure(_ action: String, _ path: String) -> RPCError {
        RPCError(code: .internalError, message: "cannot \(action) \(path): \(Filesystem.errnoText())")
    }
}
