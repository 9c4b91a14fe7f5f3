import Backupstore
import CLinux
import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The overlay of a lazily restored volume: the FUSE view of the backup below, the volume's own directory above.
/// Options that would make the upper directory depend on the lower one after the overlay is gone are off
/// (`index`, `metacopy`, `redirect_dir`), so once hydrated the upper directory is a complete, plain tree.
enum Overlay {
    static func mount(lower: String, upper: String, work: String, at merged: String) async throws(ConvoyError) {
        for path in [lower, upper, work, merged] where path.contains(",") || path.contains(":") || path.contains("\\") {
            throw .invalid("cannot build an overlay over '\(path)': overlay paths cannot hold ',', ':' or '\\'; "
                + "use a --root and vfs.path without them")
        }
        let options = "lowerdir=\(lower),upperdir=\(upper),workdir=\(work),"
            + "index=off,metacopy=off,redirect_dir=off,xino=off"
        _ = try await ExternalCommand.run("/bin/mount", ["-t", "overlay", "convoy-lazy", "-o", options, merged],
                                          timeout: .seconds(30))
    }

    /// Unmounts `path`; `detach` unmounts even while it is busy (it goes once its last user leaves). Returns 0 or
    /// the errno (EINVAL when nothing was mounted there).
    @discardableResult
    static func unmount(_ path: String, detach: Bool) -> Int32 {
        umount2(path, detach ? Int32(MNT_DETACH) : 0) == 0 ? 0 : errno
    }

    /// After the overlay is gone: removes whiteouts (character devices 0/0, left where a file of the backup was
    /// deleted) and overlayfs's own extended attributes, so the directory is a plain tree. The tree is the
    /// container's: it is walked from descriptors, never through a symlink (DirectoryDescriptor).
    static func cleanUpper(_ root: String) throws(ConvoyError) -> (whiteouts: Int, attributes: Int) {
        var whiteouts = 0
        var attributes = 0
        do throws(PosixError) {
            let top = try DirectoryDescriptor.open(root)
            // Relative paths, not open descriptors: a wide tree would otherwise hold one per pending directory.
            var pending: [ByteString] = [""]
            while let relative = pending.popLast() {
                let directory: DirectoryDescriptor
                do { directory = try top.directory(relative) } catch where error.pathIsGone { continue }
                attributes += try removeOverlayAttributes(directory.procPath(of: "."))
                for name in try directory.names() {
                    guard let info = directory.status(of: name) else { continue }
                    let type = info.st_mode & S_IFMT
                    if type == S_IFCHR && info.st_rdev == 0 {
                        guard name.withCString({ unlinkat(directory.fd, $0, 0) }) == 0 || errno == ENOENT else {
                            throw PosixError(errno, "remove the whiteout", directory.path + "/" + name.description)
                        }
                        whiteouts += 1
                    } else if type == S_IFDIR {
                        pending.append(relative.appending(name))
                    } else {
                        attributes += try removeOverlayAttributes(directory.procPath(of: name))
                    }
                }
            }
        } catch {
            throw error.convoyError()
        }
        return (whiteouts, attributes)
    }

    /// An entry's attributes, by a path through its directory's descriptor (`l*` calls: the entry is not
    /// followed; a directory's own are reached as `.` in it).
    private static func removeOverlayAttributes(_ path: ByteString) throws(PosixError) -> Int {
        try path.withCString { path throws(PosixError) in try removeOverlayAttributes(path) }
    }

    private static func removeOverlayAttributes(_ path: UnsafePointer<CChar>) throws(PosixError) -> Int {
        let size = convoy_llistxattr(path, nil, 0)
        guard size > 0 else { return 0 }
        var buffer = [CChar](repeating: 0, count: size)
        let got = convoy_llistxattr(path, &buffer, size)
        guard got > 0 else { return 0 }
        var removed = 0
        for name in overlayAttributes(buffer[..<got]) {
            guard name.withCString({ convoy_lremovexattr(path, $0) }) == 0 else {
                throw PosixError(errno, "remove \(name) from", String(cString: path))
            }
            removed += 1
        }
        return removed
    }

    private static func overlayAttributes(_ list: ArraySlice<CChar>) -> [ByteString] {
        let prefix = Array("trusted.overlay.".utf8)
        return list.split(separator: 0).map { $0.map { UInt8(bitPattern: $0) } }
            .filter { $0.starts(with: prefix) }
            .map { ByteString(bytes: $0) }
    }
}
