import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Walks a directory tree a container may be changing, and describes every entry: the root first (path ""), then
/// depth first with names in byte order, so parents always precede their children. Hard links after the first
/// become `hardlink` entries naming the first path.
///
/// The walk goes from directory descriptors, never by path: each directory is opened from its parent with
/// `O_NOFOLLOW` and checked (`fstat`) to be the one that was examined, so a directory swapped for a symlink (or for
/// another directory) between the two is never entered, and no host file reaches a backup. An entry that vanishes,
/// moves or is replaced while the walk runs is left out with a `SkippedEntry` naming it, as restic does: a busy
/// volume still gets a snapshot of everything that could be read consistently.
struct TreeScanner {
    let root: DirectoryDescriptor

    init(root: DirectoryDescriptor) {
        self.root = root
    }

    init(root path: String) throws(ConvoyError) {
        do {
            root = try DirectoryDescriptor.open(path)
        } catch {
            throw error.convoyError()
        }
    }

    /// Entries found, and those left out, since the previous batch.
    struct Batch: Sendable {
        var entries: [Entry] = []
        var skipped: [SkippedEntry] = []
    }

    func scan() throws(ConvoyError) -> Batch {
        var whole = Batch()
        try scan(batchSize: .max) { batch in
            whole.entries += batch.entries
            whole.skipped += batch.skipped
            return true
        }
        return whole
    }

    /// The same entries in the same order, handed to `deliver` in batches as they are found: at most
    /// `batchSize`, and a batch ends after any file large enough to be read directly, so that a backup can start
    /// reading it while the rest of the tree is examined. `deliver` returns false to stop the scan.
    func scan(batchSize: Int = 256, deliver: (Batch) -> Bool) throws(ConvoyError) {
        var batch = Batch()
        var firstPaths: [InodeKey: ByteString] = [:]
        let flush = { (batch: inout Batch) throws(ConvoyError) in
            guard let last = batch.entries.last else { return }
            guard batch.entries.count >= batchSize
                    || (last.type == .file && last.size >= SourceFile.directThreshold) else { return }
            let full = batch
            batch = Batch()
            guard deliver(full) else { throw ConvoyError(.internalFailure, "the scan of \(root.path) was stopped") }
        }
        let rootProbe: Probe
        do throws(PosixError) {
            rootProbe = Probe(info: try root.status(), xattrs: try PosixFile.xattrs(ByteString(root.path)), target: nil)
        } catch {
            throw error.convoyError()
        }
        batch.entries.append(try entry("", rootProbe, firstPaths: &firstPaths))
        try visitChildren(of: root, relative: "", batch: &batch, firstPaths: &firstPaths, flush: flush)
        if !batch.entries.isEmpty || !batch.skipped.isEmpty { _ = deliver(batch) }
    }

    struct InodeKey: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    private typealias Flush = (inout Batch) throws(ConvoyError) -> Void

    /// Appends the entries below `directory` (each directory's own subtree right after it).
    private func visitChildren(of directory: DirectoryDescriptor, relative: ByteString, batch: inout Batch,
                               firstPaths: inout [InodeKey: ByteString], flush: Flush) throws(ConvoyError) {
        let names: [ByteString]
        do {
            names = try directory.names()
        } catch {
            throw error.convoyError()
        }
        for (name, outcome) in zip(names, Self.probeAll(names, in: directory)) {
            let path = relative.appending(name)
            let probe: Probe
            switch outcome {
            case .found(let found): probe = found
            case .gone:
                batch.skipped.append(SkippedEntry(path: path, reason: "it vanished or was replaced during the scan"))
                continue
            case .failed(let error): throw error.convoyError()
            }
            let described = try entry(path, probe, firstPaths: &firstPaths)
            guard described.type == .directory else {
                batch.entries.append(described)
                try flush(&batch)
                continue
            }
            // Entered only if what opens (never through a symlink) is the directory that was examined.
            let opened: DirectoryDescriptor
            do {
                opened = try directory.directory(name)
                let now = try opened.status()
                guard now.st_dev == probe.info.st_dev, now.st_ino == probe.info.st_ino else {
                    batch.skipped.append(SkippedEntry(path: path, reason: "it was replaced during the scan"))
                    continue
                }
            } catch {
                guard error.pathIsGone else { throw error.convoyError() }
                batch.skipped.append(SkippedEntry(path: path, reason: "it vanished or was replaced during the scan"))
                continue
            }
            batch.entries.append(described)
            try flush(&batch)
            try visitChildren(of: opened, relative: path, batch: &batch, firstPaths: &firstPaths, flush: flush)
        }
    }

    /// The entry for one examined path; a regular file seen before under another name becomes a hard link to it.
    private func entry(_ relative: ByteString, _ probe: Probe,
                       firstPaths: inout [InodeKey: ByteString]) throws(ConvoyError) -> Entry {
        let info = probe.info
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
                return entry
            }
            if info.st_nlink > 1 { firstPaths[key] = relative }
            entry.size = UInt64(info.st_size)
        case S_IFLNK:
            entry.type = .symlink
            entry.target = probe.target ?? ""
        case S_IFIFO: entry.type = .fifo
        case S_IFSOCK: entry.type = .socket
        case S_IFCHR:
            entry.type = .charDevice
            entry.rdev = UInt64(info.st_rdev)
        case S_IFBLK:
            entry.type = .blockDevice
            entry.rdev = UInt64(info.st_rdev)
        default:
            throw ConvoyError(.driverFailure, "\(root.path)/\(relative) has an unknown file type")
        }
        if !probe.xattrs.isEmpty {
            entry.xattrs = probe.xattrs.mapValues { Data($0).base64EncodedString() }
        }
        return entry
    }
}

/// An entry a scan left out, and why.
public struct SkippedEntry: Sendable, Equatable, CustomStringConvertible {
    /// Relative to the scanned root.
    public var path: ByteString
    public var reason: String

    public init(path: ByteString, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}
