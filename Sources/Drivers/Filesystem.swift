import ConvoyCore
#if canImport(Glibc)
import Glibc
#endif

/// Thin, error-carrying wrappers over the POSIX calls drivers need, so every failure names its path and errno.
public enum Filesystem {
    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }


    /// A directory, or a symlink to one (`/var/run` → `/run` on Debian).
    public static func isDirectoryFollowingLinks(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// A directory volume's data directory, which must exist for the volume to be mounted.
    public static func volumeDirectory(_ path: String, of volume: String) throws(ConvoyError) -> String {
        guard isDirectory(path) else {
            throw ConvoyError(.driverFailure, "the data directory \(path) of volume \(volume) is missing; "
                + "restore it, or delete the volume")
        }
        return path
    }

    /// Creates a directory (and its parents) with `mode`, applied with chmod so the process umask cannot narrow it.
    /// Existing directories, and symlinks to directories, are left as they are.
    public static func makeDirectory(_ path: String, mode: mode_t, parents: Bool = true) throws(ConvoyError) {
        if isDirectoryFollowingLinks(path) { return }
        if parents, let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try makeDirectory(String(path[..<slash]), mode: 0o755, parents: true)
        }
        if mkdir(path, mode) != 0 && errno != EEXIST {
            throw ConvoyError(.driverFailure, "cannot create directory \(path): \(errnoText())")
        }
        guard isDirectoryFollowingLinks(path) else {
            throw ConvoyError(.driverFailure, "\(path) exists and is not a directory")
        }
        if chmod(path, mode) != 0 { throw ConvoyError(.driverFailure, "cannot set mode of \(path): \(errnoText())") }
    }

    /// Creates exactly this directory; fails if anything already exists at the path.
    public static func makeNewDirectory(_ path: String, mode: mode_t) throws(ConvoyError) {
        if mkdir(path, mode) != 0 {
            let code = errno
            if code == EEXIST {
                throw ConvoyError(.conflict, "\(path) already exists; move it away or delete it, then try again")
            }
            throw ConvoyError(.driverFailure, "cannot create directory \(path): \(errnoText(code))")
        }
        if chmod(path, mode) != 0 { throw ConvoyError(.driverFailure, "cannot set mode of \(path): \(errnoText())") }
    }

    /// Removes a file or a directory tree without following symbolic links. A missing path is not an error.
    /// It never crosses into another filesystem: a mount point inside the tree (a user's bind mount, a FUSE or
    /// overlay mount left behind) stops the removal with an error instead of emptying what is mounted there.
    public static func removeTree(_ path: String) throws(ConvoyError) {
        try removeTree(path, device: nil)
    }

    private static func removeTree(_ path: String, device: dev_t?) throws(ConvoyError) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw ConvoyError(.driverFailure, "cannot inspect \(path): \(errnoText())")
        }
        if let device, info.st_dev != device {
            throw ConvoyError(.driverFailure, "\(path) is a mount point; unmount it, then try again")
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            guard let dir = opendir(path) else {
                throw ConvoyError(.driverFailure, "cannot open directory \(path): \(errnoText())")
            }
            var children: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name != "." && name != ".." { children.append(name) }
            }
            closedir(dir)
            for child in children { try removeTree(path + "/" + child, device: info.st_dev) }
            if rmdir(path) != 0 && errno != ENOENT {
                throw ConvoyError(.driverFailure, "cannot remove directory \(path): \(errnoText())")
            }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw ConvoyError(.driverFailure, "cannot remove \(path): \(errnoText())")
        }
    }

    public static func errnoText(_ code: Int32 = errno) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }
}
