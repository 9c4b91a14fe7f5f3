import Backupstore
import CFuse
#if canImport(Glibc)
import Glibc
#endif

/// The libfuse high-level callbacks. They run on libfuse's threads, capture nothing (C function pointers), find
/// the file system through `private_data`, and return 0 or a negative errno. Writes need no callbacks: the
/// mount is read-only, so the kernel answers them with EROFS before they reach us.
enum FuseOperations {
    /// Largest read request (the `max_read` mount option and `conn->max_read` must agree).
    static let maxRead: UInt32 = 1 << 20
    /// Everything is immutable: the kernel may keep names, attributes and pages as long as it likes.
    static let cacheTimeout: Double = 86_400
    /// lseek's whence values for data and holes (Glibc's overlay lacks the names, which need _GNU_SOURCE).
    static let seekData: Int32 = 3
    static let seekHole: Int32 = 4

    static func make() -> fuse_operations {
        var operations = fuse_operations()
        operations.`init` = { connection, config in
            if let connection {
                connection.pointee.max_read = FuseOperations.maxRead
                connection.pointee.max_readahead = FuseOperations.maxRead
            }
            if let config {
                config.pointee.use_ino = 1  // st_ino from getattr: hard links share theirs
                config.pointee.kernel_cache = 1
                config.pointee.entry_timeout = FuseOperations.cacheTimeout
                config.pointee.attr_timeout = FuseOperations.cacheTimeout
                config.pointee.negative_timeout = FuseOperations.cacheTimeout
            }
            // libfuse replaces private_data with what this returns: hand back the one given to fuse_new.
            return fuse_get_context()?.pointee.private_data
        }
        operations.getattr = { path, info, _ in
            FuseOperations.at(path) { fileSystem, node, _ in
                info?.pointee = fileSystem.tree.attributes(of: node)
                return 0
            }
        }
        operations.readlink = { path, buffer, size in
            FuseOperations.at(path) { fileSystem, node, _ in
                let entry = fileSystem.tree.entry(node)
                guard entry.type == .symlink else { return -EINVAL }
                guard let buffer, size > 0 else { return -EIO }
                let target = Array((entry.target ?? "").utf8)
                let count = min(target.count, size - 1)  // truncated like readlink(2), always NUL-terminated
                target.withUnsafeBytes { raw in
                    if let start = raw.baseAddress { UnsafeMutableRawPointer(buffer).copyMemory(from: start, byteCount: count) }
                }
                buffer[count] = 0
                return 0
            }
        }
        operations.open = { path, info in
            FuseOperations.at(path) { fileSystem, node, name in
                guard let info else { return -EIO }
                guard info.pointee.flags & O_ACCMODE == O_RDONLY else { return -EROFS }
                guard fileSystem.tree.entry(node).type == .file else { return -EISDIR }
                // Released by `release`; the handle carries the read-ahead state of this open.
                let file = Unmanaged.passRetained(OpenFile(node: node, path: name))
                info.pointee.fh = UInt64(UInt(bitPattern: file.toOpaque()))
                info.pointee.keep_cache = 1
                return 0
            }
        }
        operations.read = { _, buffer, size, offset, info in
            guard let fileSystem = FuseOperations.current(), let buffer, let info, offset >= 0,
                  let file = UnsafeMutableRawPointer(bitPattern: UInt(info.pointee.fh)) else { return -EIO }
            return fileSystem.read(Unmanaged<OpenFile>.fromOpaque(file).takeUnretainedValue(),
                                   into: UnsafeMutableRawBufferPointer(start: buffer, count: size), at: UInt64(offset))
        }
        operations.release = { _, info in
            if let info, let file = UnsafeMutableRawPointer(bitPattern: UInt(info.pointee.fh)) {
                Unmanaged<OpenFile>.fromOpaque(file).release()
            }
            return 0
        }
        // SEEK_DATA / SEEK_HOLE, so that copies (cp, overlayfs copy-up) keep sparse files sparse; the kernel
        // handles the other kinds of seek itself.
        operations.lseek = { _, offset, whence, info in
            guard let fileSystem = FuseOperations.current(), let info,
                  let file = UnsafeMutableRawPointer(bitPattern: UInt(info.pointee.fh)) else { return off_t(-EIO) }
            guard whence == FuseOperations.seekData || whence == FuseOperations.seekHole else { return off_t(-EINVAL) }
            guard offset >= 0 else { return off_t(-ENXIO) }
            let node = Unmanaged<OpenFile>.fromOpaque(file).takeUnretainedValue().node
            return FileReader.seek(in: fileSystem.tree.entry(node), from: UInt64(offset), data: whence == FuseOperations.seekData)
                .map { off_t($0) } ?? off_t(-ENXIO)
        }
        operations.opendir = { path, info in
            FuseOperations.at(path) { fileSystem, node, _ in
                guard let info else { return -EIO }
                guard fileSystem.tree.entry(node).type == .directory else { return -ENOTDIR }
                info.pointee.fh = UInt64(node)
                info.pointee.cache_readdir = 1  // listings never change: the kernel may keep them
                info.pointee.keep_cache = 1
                return 0
            }
        }
        operations.readdir = { _, buffer, fill, offset, info, flags in
            guard let fileSystem = FuseOperations.current(), let fill, let info, offset >= 0 else { return -EIO }
            let plus = flags.rawValue & FUSE_READDIR_PLUS.rawValue != 0
            FuseOperations.list(fileSystem.tree, directory: Int(info.pointee.fh), from: Int(offset)) { name, attributes, next in
                name.withCString { name in
                    guard var attributes else { return fill(buffer, name, nil, off_t(next), fuse_fill_dir_flags(0)) != 0 }
                    return fill(buffer, name, &attributes, off_t(next), plus ? FUSE_FILL_DIR_PLUS : fuse_fill_dir_flags(0)) != 0
                }
            }
            return 0
        }
        operations.getxattr = { path, name, value, size in
            FuseOperations.at(path) { fileSystem, node, _ in
                guard let name else { return -EIO }
                let wanted = String(cString: name)
                guard let attribute = fileSystem.tree.extendedAttributes(of: node).first(where: { $0.name == wanted }) else {
                    return -ENODATA
                }
                return FuseOperations.copyOut(attribute.value, into: value, size: size)
            }
        }
        operations.listxattr = { path, list, size in
            FuseOperations.at(path) { fileSystem, node, _ in
                let names = fileSystem.tree.extendedAttributes(of: node).flatMap { Array($0.name.utf8) + [UInt8(0)] }
                return FuseOperations.copyOut(names, into: list, size: size)
            }
        }
        operations.statfs = { _, info in
            guard let fileSystem = FuseOperations.current(), let info else { return -EIO }
            var stats = statvfs()
            let blockSize: UInt64 = 4096
            stats.f_bsize = UInt(blockSize)
            stats.f_frsize = UInt(blockSize)
            stats.f_blocks = fsblkcnt_t((fileSystem.tree.dataBytes + blockSize - 1) / blockSize)
            stats.f_files = fsfilcnt_t(fileSystem.tree.entries.count)
            stats.f_namemax = 255
            stats.f_flag = UInt(ST_RDONLY)
            info.pointee = stats
            return 0
        }
        return operations
    }

    private static func current() -> BackupFileSystem? {
        guard let data = fuse_get_context()?.pointee.private_data else { return nil }
        return Unmanaged<BackupFileSystem>.fromOpaque(data).takeUnretainedValue()
    }

    /// Runs `body` with the file system, the entry shown at a libfuse path and that path (relative); -ENOENT
    /// when no entry has the path.
    private static func at(_ path: UnsafePointer<CChar>?,
                           _ body: (BackupFileSystem, _ node: Int, _ relativePath: String) -> Int32) -> Int32 {
        guard let fileSystem = current(), let path else { return -EIO }
        let relativePath = relative(path)
        guard let node = fileSystem.tree.lookup(relativePath) else { return -ENOENT }
        return body(fileSystem, node, relativePath)
    }

    /// libfuse's paths are absolute ("/a/b"); the tree's are relative ("a/b", "" for the root).
    private static func relative(_ path: UnsafePointer<CChar>) -> String {
        path.pointee == CChar(UInt8(ascii: "/")) ? String(cString: path + 1) : String(cString: path)
    }

    /// The xattr calls' convention: size 0 asks for the length; a buffer too small is ERANGE.
    private static func copyOut(_ bytes: [UInt8], into buffer: UnsafeMutablePointer<CChar>?, size: Int) -> Int32 {
        guard size > 0 else { return Int32(bytes.count) }
        guard bytes.count <= size, let buffer else { return -ERANGE }
        bytes.withUnsafeBytes { raw in
            if let start = raw.baseAddress { UnsafeMutableRawPointer(buffer).copyMemory(from: start, byteCount: raw.count) }
        }
        return Int32(bytes.count)
    }

    /// Lists a directory from entry `start` on: ".", "..", then the children, until `add` says the kernel's
    /// buffer is full. Each entry carries the offset of the next, so a directory of any size is listed in as many
    /// calls as the buffers need. Attributes go along: with readdirplus they spare the kernel a lookup per name.
    static func list(_ tree: BackupTree, directory: Int, from start: Int,
                     add: (_ name: String, _ attributes: stat?, _ next: Int) -> Bool) {
        let children = tree.children(of: directory)
        var position = start
        while position < children.count + 2 {
            let full = if position < 2 {
                add(position == 0 ? "." : "..", nil, position + 1)
            } else {
                add(String(tree.name(of: children[position - 2])), tree.attributes(of: children[position - 2]), position + 1)
            }
            if full { return }
            position += 1
        }
    }
}
