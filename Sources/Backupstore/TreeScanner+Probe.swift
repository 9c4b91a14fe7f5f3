import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension TreeScanner {
    /// What the system says about one name in a directory: its status (not following it), extended attributes
    /// and, for a symlink, its target.
    struct Probe {
        var info: stat
        var xattrs: [ByteString: [UInt8]]
        var target: ByteString?
    }

    enum ProbeOutcome {
        case found(Probe)
        /// It vanished, or became something else, between the directory's listing and the probe.
        case gone
        case failed(PosixError)
    }

    static func probe(_ name: ByteString, in directory: DirectoryDescriptor) -> ProbeOutcome {
        var info = stat()
        guard name.withCString({ fstatat(directory.fd, $0, &info, AT_SYMLINK_NOFOLLOW) }) == 0 else {
            let error = PosixError(errno, "inspect", directory.path + "/" + name.description)
            return error.pathIsGone ? .gone : .failed(error)
        }
        let isLink = info.st_mode & S_IFMT == S_IFLNK
        do throws(PosixError) {
            let target = isLink ? try directory.linkTarget(of: name) : nil
            // Through the directory's descriptor: no component on the way is looked up again by path.
            let xattrs = try PosixFile.xattrs(directory.procPath(of: name))
            return .found(Probe(info: info, xattrs: xattrs, target: target))
        } catch {
            // EINVAL from readlink: the symlink was replaced by something else.
            if error.pathIsGone || (isLink && error.code == EINVAL) { return .gone }
            return .failed(PosixError(error.code, error.operation, directory.path + "/" + name.description))
        }
    }

    /// Probes of a directory's children, in their order. Many are probed on several threads: after a cold start
    /// each lookup reads directory and inode blocks, and one thread doing them all was a fifth of an
    /// incremental backup.
    static func probeAll(_ names: [ByteString], in directory: DirectoryDescriptor) -> [ProbeOutcome] {
        let stripes = min(4, names.count / 64)
        guard stripes > 1 else { return names.map { probe($0, in: directory) } }
        let results = ProbeResults<ProbeOutcome>(count: names.count)
        DispatchQueue.concurrentPerform(iterations: stripes) { stripe in
            var index = stripe
            while index < names.count {
                results.set(index, probe(names[index], in: directory))
                index += stripes
            }
        }
        return zip(names, results.all()).map { name, result in
            result ?? .failed(PosixError(EIO, "examine", directory.path + "/" + name.description))
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
