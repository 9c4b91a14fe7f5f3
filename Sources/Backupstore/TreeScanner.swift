import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Walks a directory tree (never following symlinks, never leaving the filesystem's tree by `..`) and describes
/// every entry: the root first (path ""), then depth first with names in byte order, so parents always precede
/// their children. Hard links after the first become `hardlink` entries naming the first path.
struct TreeScanner {
    let root: String

    func scan() throws(ConvoyError) -> [Entry] {
        var entries: [Entry] = []
        var firstPaths: [InodeKey: String] = [:]
        try visit(relative: "", entries: &entries, firstPaths: &firstPaths)
        return entries
    }

    struct InodeKey: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    private func absolute(_ relative: String) -> String {
        relative.isEmpty ? root : root + "/" + relative
    }

    private func visit(relative: String, entries: inout [Entry], firstPaths: inout [InodeKey: String]) throws(ConvoyError) {
        let path = absolute(relative)
        let info = try PosixFile.lstatPath(path)
        var entry = Entry(
            path: relative, type: .file, mode: UInt32(info.st_mode & 0o7777), uid: info.st_uid, gid: info.st_gid,
            mtimeSeconds: Int64(info.st_mtim.tv_sec), mtimeNanoseconds: Int64(info.st_mtim.tv_nsec), size: 0)
        entry.inode = UInt64(info.st_ino)
        switch info.st_mode & S_IFMT {
        case S_IFDIR: entry.type = .directory
        case S_IFREG:
            let key = InodeKey(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
            if info.st_nlink > 1, let first = firstPaths[key] {
                entry.type = .hardlink
                entry.target = first
                entries.append(entry)
                return
            }
            if info.st_nlink > 1 { firstPaths[key] = relative }
            entry.type = .file
            entry.size = UInt64(info.st_size)
        case S_IFLNK:
            entry.type = .symlink
            entry.target = try PosixFile.readLink(path)
        case S_IFIFO: entry.type = .fifo
        case S_IFSOCK: entry.type = .socket
        case S_IFCHR:
            entry.type = .charDevice
            entry.rdev = UInt64(info.st_rdev)
        case S_IFBLK:
            entry.type = .blockDevice
            entry.rdev = UInt64(info.st_rdev)
        default:
            throw ConvoyError(.driverFailure, "\(path) has an unknown file type")
        }
        let attributes = try PosixFile.xattrs(path)
        if !attributes.isEmpty {
            entry.xattrs = attributes.mapValues { Data($0).base64EncodedString() }
        }
        entries.append(entry)
        if entry.type == .directory {
            for name in try PosixFile.names(in: path) {
                try visit(relative: relative.isEmpty ? name : relative + "/" + name, entries: &entries, firstPaths: &firstPaths)
            }
        }
    }
}
