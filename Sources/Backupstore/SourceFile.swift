import CLinux
import ConvoyCore
#if canImport(Glibc)
import Glibc
#endif

/// A file a backup reads once, from start to end. A large file is read around the page cache (O_DIRECT): a
/// buffered read costs a copy out of the page cache into a multi-megabyte buffer, which measured a third of an
/// incremental backup's CPU time on this VM, and it pushes the volume's own working set out of memory. Small files
/// stay buffered, where the backup's read-ahead hints make a tree of them fast. Filesystems without O_DIRECT
/// (tmpfs, some FUSE mounts) and unaligned offsets fall back to buffered reads of the same descriptor.
struct SourceFile {
    /// Files at least this large are read around the page cache.
    static let directThreshold: UInt64 = 8 << 20
    /// O_DIRECT's alignment for buffers, offsets and lengths.
    static let alignment = UncachedRead.alignment

    let fd: Int32
    let path: String
    /// Whether reads bypass the page cache; then destinations and offsets must be multiples of `alignment`.
    private(set) var direct: Bool

    init(path: String, size: UInt64) throws(ConvoyError) {
        let wantsDirect = size >= Self.directThreshold
        var fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (wantsDirect ? convoy_O_DIRECT : 0))
        var direct = wantsDirect
        if fd < 0 && errno == EINVAL && wantsDirect {
            fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            direct = false
        }
        guard fd >= 0 else { throw PosixFile.failure("open", path) }
        // A file whose data is all in memory (written or read moments ago) is cheaper to copy from the cache
        // than to read from the disk again.
        if direct && UncachedRead.isCached(fd, size: size) {
            UncachedRead.leaveDirectMode(fd)
            direct = false
        }
        self.fd = fd
        self.path = path
        self.direct = direct
    }

    func close() { _ = Glibc.close(fd) }

    /// Reads up to `count` bytes at `offset` into `buffer` (which must have room for `count` rounded up to
    /// `alignment`); returns how many were read, fewer only at the end of the file.
    mutating func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws(ConvoyError) -> Int {
        var done = 0
        while done < count {
            let position = offset + UInt64(done)
            if direct && (position % UInt64(Self.alignment) != 0
                          || Int(bitPattern: buffer + done) % Self.alignment != 0) {
                leaveDirectMode()
            }
            let length = direct ? (count - done + Self.alignment - 1) / Self.alignment * Self.alignment : count - done
            let got = pread(fd, buffer + done, length, off_t(position))
            if got < 0 {
                if errno == EINTR { continue }
                if errno == EINVAL && direct {
                    leaveDirectMode()
                    continue
                }
                throw PosixFile.failure("read", path)
            }
            if got == 0 { break }
            done += min(got, count - done)
        }
        return done
    }

    private mutating func leaveDirectMode() {
        UncachedRead.leaveDirectMode(fd)
        direct = false
    }
}
