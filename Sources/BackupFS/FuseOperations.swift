import Backupstore
import CFuse
import ConvoyCore
#if canImport(Glibc)
import Glibc
#endif

/// The libfuse low-level callbacks. The low-level API addresses entries by node id (`BackupTree.nodeID`), so a
/// call costs an array lookup instead of a path walk, and a read is answered with `writev` straight from the
/// blocks' memory, where the high-level API had us copy each reply into a buffer it allocated per request.
/// The callbacks capture nothing (C function pointers), find the file system through the session's user data,
/// and reply exactly once. Writes need no callbacks: the mount is read-only, so the kernel answers them with EROFS.
enum FuseOperations {
    /// Largest read request (the `max_read` mount option and `conn->max_read` must agree).
    static let maxRead: UInt32 = 1 << 20
    /// Everything is immutable: the kernel may keep names, attributes and pages as long as it likes.
    static let cacheTimeout: Double = 86_400
    /// lseek's whence values for data and holes (Glibc's overlay lacks the names, which need _GNU_SOURCE).
    static let seekData: Int32 = 3
    static let seekHole: Int32 = 4

    static func make() -> fuse_lowlevel_ops {
        var operations = fuse_lowlevel_ops()
        operations.`init` = { userData, connection in
            connection?.pointee.max_read = FuseOperations.maxRead
            connection?.pointee.max_readahead = FuseOperations.maxRead
            if let userData, let connection, connection.pointee.capable & UInt32(FUSE_CAP_NO_OPEN_SUPPORT) != 0 {
                Unmanaged<BackupFilesystem>.fromOpaque(userData).takeUnretainedValue()
                    .kernelOpensFilesAlone.store(true, ordering: .relaxed)
            }
        }
        operations.lookup = { request, parent, name in
            FuseOperations.serve(request, parent) { filesystem, directory throws(Errno) in
                guard let name else { throw Errno(EIO) }
                guard filesystem.tree.entry(directory).type == .directory else { throw Errno(ENOTDIR) }
                // Node id 0 with a timeout: the kernel remembers that the name does not exist.
                var parameters = fuse_entry_param()
                parameters.entry_timeout = FuseOperations.cacheTimeout
                if let child = filesystem.tree.child(named: FuseOperations.bytes(name), of: directory) {
                    parameters = FuseOperations.entry(filesystem.tree, child)
                }
                _ = fuse_reply_entry(request, &parameters)
            }
        }
        operations.getattr = { request, node, _ in
            FuseOperations.serve(request, node) { filesystem, index throws(Errno) in
                var attributes = filesystem.tree.attributes(of: index)
                _ = fuse_reply_attr(request, &attributes, FuseOperations.cacheTimeout)
            }
        }
        operations.readlink = { request, node in
            FuseOperations.serve(request, node) { filesystem, index throws(Errno) in
                let entry = filesystem.tree.entry(index)
                guard entry.type == .symlink else { throw Errno(EINVAL) }
                _ = (entry.target ?? "").withCString { fuse_reply_readlink(request, $0) }
            }
        }
        operations.open = { request, node, info in
            FuseOperations.serve(request, node) { filesystem, index throws(Errno) in
                guard let info else { throw Errno(EIO) }
                guard info.pointee.flags & O_ACCMODE == O_RDONLY else { throw Errno(EROFS) }
                guard filesystem.tree.entry(index).type == .file else { throw Errno(EISDIR) }
                // ENOSYS, where the kernel allows it: it then opens files without asking (and sends no release),
                // two round trips fewer for each small file read; reads come with handle 0 (`OpenFiles`).
                if filesystem.kernelOpensFilesAlone.load(ordering: .relaxed) { throw Errno(ENOSYS) }
                // Released by `release`; the handle carries the read-ahead state of this open.
                let path = filesystem.tree.entry(index).path.description
                let handle = filesystem.openFiles.open(OpenFile(node: index, path: path))
                info.pointee.fh = handle
                info.pointee.keep_cache = 1
                // An interrupted open(2) gets no release: the handle is dropped here instead.
                if fuse_reply_open(request, info) == -ENOENT { filesystem.openFiles.release(handle) }
            }
        }
        operations.read = { request, node, size, offset, info in
            guard let filesystem = FuseOperations.filesystem(request),
                  let file = FuseOperations.openFile(filesystem, node, info), offset >= 0 else {
                _ = fuse_reply_err(request, EIO)
                return
            }
            switch filesystem.read(file, count: size, at: UInt64(offset)) {
            case .success(let pieces): FuseReplies.data(request, pieces, zeros: filesystem.zeros)
            case .failure(let error): _ = fuse_reply_err(request, error.code)
            }
        }
        operations.release = { request, _, info in
            if let info, let filesystem = FuseOperations.filesystem(request) {
                filesystem.openFiles.release(info.pointee.fh)
            }
            _ = fuse_reply_err(request, 0)
        }
        // SEEK_DATA / SEEK_HOLE, so that copies (cp, overlayfs copy-up) keep sparse files sparse; the kernel
        // handles the other kinds of seek itself.
        operations.lseek = { request, node, offset, whence, info in
            guard let filesystem = FuseOperations.filesystem(request),
                  let file = FuseOperations.openFile(filesystem, node, info) else {
                _ = fuse_reply_err(request, EIO)
                return
            }
            guard whence == FuseOperations.seekData || whence == FuseOperations.seekHole else {
                _ = fuse_reply_err(request, EINVAL)
                return
            }
            let found = offset < 0 ? nil : FileReader.seek(in: filesystem.tree.entry(file.node), from: UInt64(offset),
                                                           data: whence == FuseOperations.seekData)
            if let found { _ = fuse_reply_lseek(request, off_t(found)) } else { _ = fuse_reply_err(request, ENXIO) }
        }
        operations.opendir = { request, node, info in
            FuseOperations.serve(request, node) { filesystem, index throws(Errno) in
                guard let info else { throw Errno(EIO) }
                guard filesystem.tree.entry(index).type == .directory else { throw Errno(ENOTDIR) }
                info.pointee.cache_readdir = 1  // listings never change: the kernel may keep them
                info.pointee.keep_cache = 1
                _ = fuse_reply_open(request, info)
            }
        }
        operations.readdir = { request, node, size, offset, _ in
            FuseOperations.serve(request, node) { filesystem, index throws(Errno) in
                try FuseOperations.listing(request, filesystem.tree, directory: index, size: size, from: offset,
                                           plus: false)
            }
        }
        // With attributes and node ids in the listing, `ls -l` of a large directory needs no lookup per name.
        operations.readdirplus = { request, node, size, offset, _ in
            FuseOperations.serve(request, node) { filesystem, index throws(Errno) in
                try FuseOperations.listing(request, filesystem.tree, directory: index, size: size, from: offset,
                                           plus: true)
            }
        }
        operations.getxattr = { request, node, name, size in
            FuseOperations.serve(request, node) { filesystem, index throws(Errno) in
                guard let name else { throw Errno(EIO) }
                let wanted = FuseOperations.bytes(name)
                guard let attribute = filesystem.tree.extendedAttributes(of: index)
                        .first(where: { $0.name == wanted }) else {
                    throw Errno(ENODATA)
                }
                FuseReplies.xattr(request, attribute.value, size: size)
            }
        }
        operations.listxattr = { request, node, size in
            // A crash while serving the daemon's own request (a hydration's copy-up lists the lower file's xattrs):
            // the request is then read and never answered (see `DyingServerRequests`).
            Failpoint.reach("fuse-listxattr")
            FuseOperations.serve(request, node) { filesystem, index throws(Errno) in
                let names = filesystem.tree.extendedAttributes(of: index).flatMap { $0.name.bytes + [UInt8(0)] }
                FuseReplies.xattr(request, names, size: size)
            }
        }
        operations.statfs = { request, _ in
            guard let filesystem = FuseOperations.filesystem(request) else {
                _ = fuse_reply_err(request, EIO)
                return
            }
            var stats = statvfs()
            let blockSize: UInt64 = 4096
            stats.f_bsize = UInt(blockSize)
            stats.f_frsize = UInt(blockSize)
            stats.f_blocks = fsblkcnt_t((filesystem.tree.dataBytes + blockSize - 1) / blockSize)
            stats.f_files = fsfilcnt_t(filesystem.tree.entries.count)
            stats.f_namemax = 255
            stats.f_flag = UInt(ST_RDONLY)
            _ = fuse_reply_statfs(request, &stats)
        }
        return operations
    }

    private static func filesystem(_ request: fuse_req_t?) -> BackupFilesystem? {
        guard let data = fuse_req_userdata(request) else { return nil }
        return Unmanaged<BackupFilesystem>.fromOpaque(data).takeUnretainedValue()
    }

    /// The open file of a request's handle; a handle an earlier daemon made is adopted as an open of `node`.
    private static func openFile(_ filesystem: BackupFilesystem, _ node: fuse_ino_t,
                                 _ info: UnsafeMutablePointer<fuse_file_info>?) -> OpenFile? {
        guard let info, let index = filesystem.tree.index(ofNode: node) else { return nil }
        return filesystem.openFiles.file(info.pointee.fh, node: index) {
            guard filesystem.tree.entry(index).type == .file else { return nil }
            return OpenFile(node: index, path: filesystem.tree.entry(index).path.description)
        }
    }

    /// Runs `body` with the file system and the entry of `node`; `body` replies, or throws the errno to reply
    /// with (ENOENT for a node id this tree never gave).
    private static func serve(_ request: fuse_req_t?, _ node: fuse_ino_t,
                              _ body: (BackupFilesystem, _ index: Int) throws(Errno) -> Void) {
        do throws(Errno) {
            guard let filesystem = filesystem(request) else { throw Errno(EIO) }
            guard let index = filesystem.tree.index(ofNode: node) else { throw Errno(ENOENT) }
            try body(filesystem, index)
        } catch {
            _ = fuse_reply_err(request, error.code)
        }
    }

    /// What a lookup answers for an entry: its node id and attributes, both kept as long as the kernel likes.
    private static func entry(_ tree: BackupTree, _ index: Int) -> fuse_entry_param {
        var parameters = fuse_entry_param()
        parameters.ino = tree.nodeID(of: index)
        parameters.attr = tree.attributes(of: index)
        parameters.attr_timeout = cacheTimeout
        parameters.entry_timeout = cacheTimeout
        return parameters
    }

    /// A name the kernel passed, as its bytes (names need not be UTF-8).
    static func bytes(_ name: UnsafePointer<CChar>) -> ByteString {
        ByteString(bytes: UnsafeRawBufferPointer(start: name, count: strlen(name)))
    }

    /// Replies to a readdir(plus) with as many entries from `start` as fit in `size` bytes.
    private static func listing(_ request: fuse_req_t?, _ tree: BackupTree, directory: Int, size: Int,
                                from start: off_t, plus: Bool) throws(Errno) {
        guard tree.entry(directory).type == .directory else { throw Errno(ENOTDIR) }
        guard start >= 0 else { throw Errno(EINVAL) }
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: max(1, size))
        defer { buffer.deallocate() }
        var used = 0
        list(tree, directory: directory, from: Int(start)) { name, child, next in
            name.withCString { name in
                let room = size - used
                let added: Int
                if plus {
                    // "." and "..": node id 0, so the kernel makes no entry for them.
                    var parameters = child.map { entry(tree, $0) } ?? fuse_entry_param()
                    if child == nil { parameters.attr = dotAttributes(tree, directory) }
                    added = fuse_add_direntry_plus(request, buffer + used, room, name, &parameters, off_t(next))
                } else {
                    var attributes = child.map { tree.attributes(of: $0) } ?? dotAttributes(tree, directory)
                    added = fuse_add_direntry(request, buffer + used, room, name, &attributes, off_t(next))
                }
                guard added <= room else { return true }
                used += added
                return false
            }
        }
        _ = fuse_reply_buf(request, buffer, used)
    }

    private static func dotAttributes(_ tree: BackupTree, _ directory: Int) -> stat {
        var attributes = stat()
        attributes.st_ino = ino_t(tree.nodeID(of: directory))
        attributes.st_mode = S_IFDIR
        return attributes
    }

    /// Lists a directory from entry `start` on: ".", "..", then the children, until `add` says the kernel's
    /// buffer is full. Each entry carries the offset of the next, so a directory of any size is listed in as many
    /// calls as the buffers need.
    private static func list(_ tree: BackupTree, directory: Int, from start: Int,
                     add: (_ name: ByteString, _ child: Int?, _ next: Int) -> Bool) {
        let children = tree.children(of: directory)
        var position = start
        while position < children.count + 2 {
            let full = if position < 2 {
                add(position == 0 ? "." : "..", nil, position + 1)
            } else {
                add(tree.name(of: children[position - 2]), children[position - 2], position + 1)
            }
            if full { return }
            position += 1
        }
    }
}
