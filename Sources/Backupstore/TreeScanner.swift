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
        try visit(relative: "", entries: &entries, firstPaths: &firstPaths, flush: { _ in })
        return entries
    }

    /// The same entries in the same order, handed to `deliver` in batches as they are found: at most
    /// `batchSize`, and a batch ends after any file large enough to be read directly, so that a backup can start
    /// reading it while the rest of the tree is examined. `deliver` returns false to stop the scan.
    func scan(batchSize: Int = 256, deliver: ([Entry]) -> Bool) throws(ConvoyError) {
        var entries: [Entry] = []
        var firstPaths: [InodeKey: String] = [:]
        let flush = { (entries: inout [Entry]) throws(ConvoyError) in
            guard let last = entries.last else { return }
            guard entries.count >= batchSize || (last.type == .file && last.size >= SourceFile.directThreshold) else {
                return
            }
            let batch = entries
            entries.removeAll(keepingCapacity: true)
            guard deliver(batch) else { throw ConvoyError(.internalFailure, "the scan of \(root) was stopped") }
        }
        try visit(relative: "", entries: &entries, firstPaths: &firstPaths, flush: flush)
        if !entries.isEmpty { _ = deliver(entries) }
    }

    struct InodeKey: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    private func absolute(_ relative: String) -> String {
        relative.isEmpty ? root : root + "/" + relative
    }

    /// What the system says about one path: its `lstat`, extended attributes and, for a symlink, its target.
    private struct Probe {
        var info: stat
        var xattrs: [String: [UInt8]]
        var target: String?
    }

    private static func probe(_ path: String) -> Result<Probe, ConvoyError> {
        do throws(ConvoyError) {
            let info = try PosixFile.lstatPath(path)
            let target = info.st_mode & S_IFMT == S_IFLNK ? try PosixFile.readLink(path) : nil
            return .success(Probe(info: info, xattrs: try PosixFile.xattrs(path), target: target))
        } catch {
            return .failure(error)
        }
    }

    /// Probes of a directory's children, in their order. Many are probed on several threads: after a cold start
    /// each lookup reads directory and inode blocks, and one thread doing them all was a fifth of an
    /// incremental backup.
    private static func probeAll(_ paths: [String]) -> [Result<Probe, ConvoyError>] {
        let stripes = min(4, paths.count / 64)
        guard stripes > 1 else { return paths.map(probe) }
        let results = ProbeResults<Result<Probe, ConvoyError>>(count: paths.count)
        DispatchQueue.concurrentPerform(iterations: stripes) { stripe in
            var index = stripe
            while index < paths.count {
                results.set(index, probe(paths[index]))
                index += stripes
            }
        }
        return zip(paths, results.all()).map { path, result in
            result ?? .failure(ConvoyError(.internalFailure, "\(path) was not examined"))
        }
    }

    private typealias Flush = (inout [Entry]) throws(ConvoyError) -> Void

    private func visit(relative: String, entries: inout [Entry], firstPaths: inout [InodeKey: String],
                       flush: Flush) throws(ConvoyError) {
        try visit(relative: relative, probe: Self.probe(absolute(relative)).get(), entries: &entries,
                  firstPaths: &firstPaths, flush: flush)
    }

    /// Appends the entry (then, for a directory, its subtree), offering the list to `flush` after each append.
    private func visit(relative: String, probe: Probe, entries: inout [Entry], firstPaths: inout [InodeKey: String],
                       flush: Flush) throws(ConvoyError) {
        let path = absolute(relative)
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
                entries.append(entry)
                try flush(&entries)
                return
            }
            if info.st_nlink > 1 { firstPaths[key] = relative }
            entry.type = .file
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
            throw ConvoyError(.driverFailure, "\(path) has an unknown file type")
        }
        if !probe.xattrs.isEmpty {
            entry.xattrs = probe.xattrs.mapValues { Data($0).base64EncodedString() }
        }
        entries.append(entry)
        try flush(&entries)
        if entry.type == .directory {
            let children = try PosixFile.names(in: path).map { relative.isEmpty ? $0 : relative + "/" + $0 }
            for (child, probe) in zip(children, Self.probeAll(children.map(absolute))) {
                try visit(relative: child, probe: probe.get(), entries: &entries, firstPaths: &firstPaths, flush: flush)
            }
        }
    }
}

/// Results written by the probing threads, each index by exactly one of them (into memory allocated once, so
/// no write ever touches another's element or the storage itself).
private final class ProbeResults<Value>: @unchecked Sendable {
    private let storage: UnsafeMutableBufferPointer<Value?>

    init(count: Int) {
        storage = .allocate(capacity: count)
        storage.initialize(repeating: nil)
    }

    deinit {
        storage.deinitialize()
        storage.deallocate()
    }

    func set(_ index: Int, _ value: Value) { storage[index] = value }

    func all() -> [Value?] { Array(storage) }
}
