import CLinux
#if canImport(Glibc)
import Glibc
#endif

extension DirectoryDescriptor {
    /// Opens the file at `relative` beneath this directory, following no symlink in any component: one `openat2`
    /// call where the kernel offers it, else a walk one component at a time (`directory`, then `openat` with
    /// `O_NOFOLLOW`). ELOOP, ENOTDIR or ENOENT (`PosixError.pathIsGone`) when a component is a symlink, not a
    /// directory, or gone. Returns the open descriptor, which the caller closes.
    public func openFile(_ relative: ByteString, flags: Int32) throws(PosixError) -> Int32 {
        let flags = flags | O_NOFOLLOW | O_CLOEXEC
        let fd = relative.withCString { convoy_open_beneath(self.fd, $0, flags) }
        if fd >= 0 { return fd }
        let code = errno
        guard code == ENOSYS || code == EPERM else { throw PosixError(code, "open", path + "/" + relative.description) }
        let (directory, name) = try parent(of: relative)
        let walked = name.withCString { openat(directory.fd, $0, flags) }
        guard walked >= 0 else { throw PosixError(errno, "open", path + "/" + relative.description) }
        return walked
    }

    /// The names in this directory as the bytes the filesystem holds ("." and ".." left out), in byte order.
    public func names() throws(PosixError) -> [ByteString] {
        let copy = dup(fd)
        guard copy >= 0, let stream = fdopendir(copy) else {
            let code = errno
            if copy >= 0 { close(copy) }
            throw PosixError(code, "read directory", path)
        }
        defer { closedir(stream) }
        rewinddir(stream)
        var names: [ByteString] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                ByteString(bytes: raw.prefix(while: { $0 != 0 }))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// The target of the symlink `name` in this directory (EINVAL when it is no longer a symlink).
    public func linkTarget(of name: ByteString) throws(PosixError) -> ByteString {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = name.withCString { readlinkat(fd, $0, &buffer, buffer.count - 1) }
        guard count >= 0 else { throw PosixError(errno, "read link", path + "/" + name.description) }
        return ByteString(bytes: buffer[0..<count].map { UInt8(bitPattern: $0) })
    }
}
