import CLinux
import ConvoyCore
#if canImport(Glibc)
import Glibc
#endif

/// Reads a whole file around the page cache (O_DIRECT) into aligned memory of its own. For objects read once,
/// such as a block fetched by a restore or a backup mount: a buffered read would allocate page-cache pages,
/// insert them and copy them out again, which measured a quarter of a cold backup-mount read's CPU time.
/// A file whose pages are all cached already (a block written moments ago, then copied to another store) is
/// read through the cache instead, so that it costs no disk read.
/// Filesystems without O_DIRECT (tmpfs), or a short read that leaves an unaligned offset, fall back to buffered
/// reads of the same descriptor; either way the caller gets the file's bytes.
enum UncachedRead {
    /// What O_DIRECT asks of the buffer, the offset and the length on the block devices in use (logical blocks of
    /// 512 or 4096 bytes).
    static let alignment = 4096

    /// errno and the call that failed.
    struct Failure: Error {
        let code: Int32
        let operation: String
    }

    static func contents(of path: String) throws(Failure) -> ObjectBytes {
        try read(path) { size in (0, size) }
    }

    /// `length` bytes of the file from `offset` (one block of a pack). Fewer when the file ends first: the caller
    /// checks the count.
    static func range(of path: String, offset: Int, length: Int) throws(Failure) -> ObjectBytes {
        try read(path) { _ in (offset, length) }
    }

    /// Reads the range `wanted(fileSize)` returns. O_DIRECT reads whole aligned blocks, so the read starts at the
    /// aligned offset before the range and the result skips to it.
    private static func read(_ path: String,
                             _ wanted: (Int) -> (offset: Int, length: Int)) throws(Failure) -> ObjectBytes {
        var fd = open(path, O_RDONLY | O_CLOEXEC | convoy_O_DIRECT)
        if fd < 0 && errno == EINVAL { fd = open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw Failure(code: errno, operation: "open") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Failure(code: errno, operation: "stat") }
        let size = Int(info.st_size)
        let (offset, length) = wanted(size)
        if isCached(fd, size: UInt64(size)) { leaveDirectMode(fd) }
        let alignedStart = offset / alignment * alignment
        let end = min(size, offset + length)
        // Whole aligned blocks: O_DIRECT reads whole blocks and stops at the end of the file.
        let capacity = max(alignment, (end - alignedStart + alignment - 1) / alignment * alignment)
        var allocated: UnsafeMutableRawPointer?
        guard posix_memalign(&allocated, alignment, capacity) == 0, let memory = allocated else {
            throw Failure(code: ENOMEM, operation: "allocate memory to read")
        }
        var done = 0
        while alignedStart + done < end {
            if done % alignment != 0 { leaveDirectMode(fd) }
            let got = pread(fd, memory + done, capacity - done, off_t(alignedStart + done))
            if got < 0 {
                let code = errno
                if code == EINTR || (code == EINVAL && leaveDirectMode(fd)) { continue }
                free(memory)
                throw Failure(code: code, operation: "read")
            }
            if got == 0 { break }
            done += got
        }
        let skip = offset - alignedStart
        return ObjectBytes(adopting: memory, start: min(skip, done),
                           count: max(0, min(done, end - alignedStart) - skip))
    }

    /// Whether every page of the file's `size` bytes is in the page cache, as for a block a backup wrote moments
    /// ago: then a buffered read is a copy from memory, where a direct read would go to the disk for it again.
    /// False when the kernel cannot say (cachestat(2) needs Linux 6.5).
    static func isCached(_ fd: Int32, size: UInt64) -> Bool {
        let pages = convoy_cached_pages(fd)
        return pages >= 0 && UInt64(pages) * UInt64(pageSize) >= size
    }

    private static let pageSize = max(4096, sysconf(Int32(_SC_PAGESIZE)))

    /// Switches `fd` to buffered reads; false when it already was.
    @discardableResult
    static func leaveDirectMode(_ fd: Int32) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, flags & convoy_O_DIRECT != 0 else { return false }
        return fcntl(fd, F_SETFL, flags & ~convoy_O_DIRECT) == 0
    }
}
