import ConvoyCore
#if canImport(Glibc)
import Glibc
#endif

/// Asks the kernel to start reading the next files of a backup while the current one is chunked: a tree of
/// small files is otherwise one cold open-and-read at a time. Hints run on the I/O pool and never fail a backup.
struct ReadAhead {
    /// Files hinted ahead of the one being read.
    static let depth = 32
    /// Bytes hinted per file: large files are read ahead by the kernel's own sequential read-ahead.
    static let bytesPerFile: off_t = 4 << 20

    /// The tree being backed up: files are opened beneath it as `SourceFile` opens them (no symlink followed).
    let root: DirectoryDescriptor
    private var files: [(path: ByteString, size: UInt64)] = []
    private var hinted = 0

    init(root: DirectoryDescriptor) {
        self.root = root
    }

    /// Files that will be read (paths relative to `root`), in the order they will be read (added while the tree
    /// is still being scanned).
    mutating func add(_ path: ByteString, size: UInt64) {
        files.append((path, size))
    }

    /// Called before reading file `index` of the list.
    mutating func reading(_ index: Int) {
        let end = min(files.count, index + 1 + Self.depth)
        while hinted < end {
            let file = files[hinted]
            hinted += 1
            // Files read around the page cache (SourceFile) would only be read twice.
            guard hinted - 1 > index, file.size > 0, file.size < SourceFile.directThreshold else { continue }
            BlockingIOPool.shared.submit { [root] in
                guard let fd = try? root.openFile(file.path, flags: O_RDONLY | O_NONBLOCK) else { return }
                _ = posix_fadvise(fd, 0, min(off_t(clamping: file.size), Self.bytesPerFile), POSIX_FADV_WILLNEED)
                close(fd)
            }
        }
    }
}
