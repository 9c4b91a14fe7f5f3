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

    /// What opening a scanned file found.
    enum Opened {
        case file(SourceFile)
        /// It vanished, a component on the way became a symlink, or another file took its name since the scan.
        case gone(reason: String)
    }

    /// Opens the regular file a scan found at `relative` beneath `root` (its size and inode as scanned), following
    /// no symlink on the way, and checks that it is still that file.
    static func open(_ relative: ByteString, in root: DirectoryDescriptor, size: UInt64,
                     inode: UInt64?) throws(ConvoyError) -> Opened {
        let path = root.path + "/" + relative.description
        let wantsDirect = size >= Self.directThreshold
        var direct = wantsDirect
        var fd: Int32
        // O_NONBLOCK: a name swapped for a FIFO since the scan must not hold the open (fstat then refuses it).
        do throws(PosixError) {
            do throws(PosixError) {
                fd = try root.openFile(relative, flags: O_RDONLY | O_NONBLOCK | (wantsDirect ? convoy_O_DIRECT : 0))
            } catch where error.code == EINVAL && wantsDirect {
                fd = try root.openFile(relative, flags: O_RDONLY | O_NONBLOCK)
                direct = false
            }
        } catch {
            if error.pathIsGone { return .gone(reason: "it vanished or was replaced during the backup") }
            throw error.convoyError()
        }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG,
              inode.map({ UInt64(info.st_ino) == $0 }) ?? true else {
            _ = Glibc.close(fd)
            return .gone(reason: "another file took its name during the backup")
        }
        // A file whose data is all in memory (written or read moments ago) is cheaper to copy from the cache
        // than to read from the disk again.
        if direct && UncachedRead.isCached(fd, size: size) {
            UncachedRead.leaveDirectMode(fd)
            direct = false
        }
        return .file(SourceFile(fd: fd, path: path, direct: direct))
    }

    private init(fd: Int32, path: String, direct: Bool) {
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
