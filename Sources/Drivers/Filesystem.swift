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
    /// Below `path` (a container may have written the tree, and may still be changing it), every name is reached
    /// from a directory descriptor, never through a symlink: a symlink is removed, not followed.
    public static func removeTree(_ path: String) throws(ConvoyError) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw ConvoyError(.driverFailure, "cannot inspect \(path): \(errnoText())")
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            if unlink(path) != 0 && errno != ENOENT {
                throw ConvoyError(.driverFailure, "cannot remove \(path): \(errnoText())")
            }
            return
        }
        let top: DirectoryDescriptor
        do throws(PosixError) {
            top = try DirectoryDescriptor.open(path)
        } catch where error.code == ENOENT {
            return
        } catch {
            throw error.convoyError()
        }
        do throws(RemovalFailure) {
            try removeContents(top, device: info.st_dev)
        } catch {
            switch error {
            case .posix(let failure): throw failure.convoyError()
            case .mountPoint(let path):
                throw ConvoyError(.driverFailure, "\(path) is a mount point; unmount it, then try again")
            }
        }
        if rmdir(path) != 0 && errno != ENOENT {
            throw ConvoyError(.driverFailure, "cannot remove directory \(path): \(errnoText())")
        }
    }

    private enum RemovalFailure: Error {
        case posix(PosixError)
        case mountPoint(String)
    }

    private static func removeContents(_ directory: DirectoryDescriptor, device: dev_t) throws(RemovalFailure) {
        let names: [ByteString]
        do throws(PosixError) { names = try directory.names() } catch { throw .posix(error) }
        for name in names {
            guard let info = directory.status(of: name) else { continue }
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                try removeEntry(name, in: directory, flags: 0)
                continue
            }
            guard info.st_dev == device else { throw .mountPoint(directory.path + "/" + name.description) }
            let child: DirectoryDescriptor
            do throws(PosixError) {
                child = try directory.directory(name)
            } catch {
                if error.code == ENOENT { continue }
                // Swapped for something else since it was listed: that is removed as what it is now.
                guard error.code == ELOOP || error.code == ENOTDIR else { throw .posix(error) }
                try removeEntry(name, in: directory, flags: 0)
                continue
            }
            // Opened without following links, so whatever directory is there now is inside the tree; one
            // mounted there since the listing is refused like any mount point.
            var opened = stat()
            guard fstat(child.fd, &opened) == 0 else { throw .posix(PosixError(errno, "inspect", child.path)) }
            guard opened.st_dev == device else { throw .mountPoint(child.path) }
            try removeContents(child, device: device)
            try removeEntry(name, in: directory, flags: AT_REMOVEDIR)
        }
    }

    private static func removeEntry(_ name: ByteString, in directory: DirectoryDescriptor,
                                    flags: Int32) throws(RemovalFailure) {
        guard name.withCString({ unlinkat(directory.fd, $0, flags) }) == 0 || errno == ENOENT else {
            throw .posix(PosixError(errno, "remove", directory.path + "/" + name.description))
        }
    }

    public static func errnoText(_ code: Int32 = errno) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }
}
