import CLinux
import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Recreates a file backup's tree in an empty directory: content, holes, symlinks, hard links, special files,
/// ownership, modes, xattrs and times. Every path is checked before use: no component may be `.`/`..`, and an
/// entry's parent must be a directory this restore created, so a manifest cannot write outside the target (for
/// instance through a symlink it restored earlier).
public struct FileRestorer: Sendable {
    public let repository: BackupRepository
    /// Bytes of blocks fetched and not yet written, across all the files being restored (each file may always
    /// have one block in flight). Without it, 8 files × 8 blocks of up to 4 MiB could be held at once.
    let allowance: ByteAllowance

    public init(repository: BackupRepository, allowance: ByteAllowance = ByteAllowance(limit: 32 << 20)) {
        self.repository = repository
        self.allowance = allowance
    }

    /// Files restored at once (each file's chunks are written in order by one task).
    static let width = 8

    public func restore(_ manifest: Manifest, into target: String,
                        progress: @escaping ProgressSink = { _ in }) async throws(ConvoyError) {
        let plan = try Self.plan(manifest)
        let total = plan.dataBytes
        let counter = ProgressCounter(WorkProgress(phase: "restoring", bytesTotal: total,
                                                   itemsTotal: manifest.entries.count),
                                      sink: progress)
        // 1. The skeleton, in manifest order (parents first): directories, symlinks, special files.
        for entry in plan.skeleton {
            let path = Self.path(entry, in: target)
            switch entry.type {
            case .directory:
                if !entry.path.isEmpty {
                    guard path.withCString({ mkdir($0, 0o700) }) == 0 else {
                        throw PosixFile.failure("create directory", path.description)
                    }
                }
            case .symlink:
                let made = (entry.target ?? "").withCString { target in path.withCString { symlink(target, $0) } }
                guard made == 0 else { throw PosixFile.failure("create symlink", path.description) }
            case .fifo:
                guard path.withCString({ mkfifo($0, 0o600) }) == 0 else {
                    throw PosixFile.failure("create fifo", path.description)
                }
            case .socket, .charDevice, .blockDevice:
                let type: mode_t = entry.type == .socket ? S_IFSOCK : entry.type == .charDevice ? S_IFCHR : S_IFBLK
                guard path.withCString({ mknod($0, type | 0o600, dev_t(entry.rdev ?? 0)) }) == 0 else {
                    throw PosixFile.failure("create node", path.description)
                }
            case .file, .hardlink:
                continue
            }
            try Self.applyMetadata(entry, at: path)
            counter.add(bytes: 0, items: 1)
        }
        // 2. File contents, several files at a time; blocks in packs fetched a pack range at a time, ahead.
        let blocks = try await PackReadAhead(repository: repository,
                                             files: plan.files.map { ($0.chunks ?? []).map(\.hash) },
                                             ahead: repository.store.requestConcurrency, budget: Self.readAheadBudget)
        let files = blocks.readingOrder.map { plan.files[$0] }
        let failure: ConvoyError? = await withTaskGroup(of: ConvoyError?.self) { group in
            var next = 0
            func launch(_ entry: Entry) {
                group.addTask { [allowance] in
                    do throws(ConvoyError) {
                        try await Self.restoreFile(entry, at: Self.path(entry, in: target), blocks: blocks,
                                                   allowance: allowance, counter: counter)
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            while next < min(Self.width, files.count) {
                launch(files[next])
                next += 1
            }
            for await result in group {
                if let result {
                    group.cancelAll()
                    return result
                }
                if next < files.count {
                    launch(files[next])
                    next += 1
                }
            }
            return nil
        }
        if let failure { throw failure }
        // 3. Hard links, now that their targets exist.
        for entry in plan.links {
            let first = ByteString(target) + "/" + (entry.target ?? "")
            let path = Self.path(entry, in: target)
            guard first.withCString({ first in path.withCString { link(first, $0) } }) == 0 else {
                throw PosixFile.failure("create hard link", path.description)
            }
            counter.add(bytes: 0, items: 1)
        }
        // 4. One sync for everything written, then times, deepest first (creating children changes a directory's
        //    mtime).
        let fd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw PosixFile.failure("open", target) }
        let synced = convoy_syncfs(fd)
        close(fd)
        guard synced == 0 else { throw PosixFile.failure("sync", target) }
        for entry in manifest.entries.reversed() where entry.type != .hardlink {
            let path = Self.path(entry, in: target)
            var times = [timespec(tv_sec: Int(entry.mtimeSeconds), tv_nsec: Int(entry.mtimeNanoseconds)),
                         timespec(tv_sec: Int(entry.mtimeSeconds), tv_nsec: Int(entry.mtimeNanoseconds))]
            guard path.withCString({ utimensat(AT_FDCWD, $0, &times, AT_SYMLINK_NOFOLLOW) }) == 0 else {
                throw PosixFile.failure("set times of", path.description)
            }
        }
        progress(WorkProgress(phase: "restored", bytesDone: total, bytesTotal: total,
                              itemsDone: manifest.entries.count, itemsTotal: manifest.entries.count))
    }

    static func path(_ entry: Entry, in target: String) -> ByteString {
        entry.path.isEmpty ? ByteString(target) : ByteString(target) + "/" + entry.path
    }

    /// Blocks of one file fetched ahead of the one being written.
    static let prefetch = 8
    /// Bytes of pack ranges held for blocks not yet written (`PackReadAhead`).
    static let readAheadBudget = 96 << 20

    /// Writes one file's chunks at their offsets, in order, while the next few blocks are fetched and verified
    /// (as many as `allowance` lets it hold); what no chunk covers stays a hole.
    static func restoreFile(_ entry: Entry, at bytePath: ByteString, blocks: PackReadAhead,
                            allowance: ByteAllowance, counter: ProgressCounter) async throws(ConvoyError) {
        let fd = bytePath.withCString { open($0, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600) }
        let path = bytePath.description
        guard fd >= 0 else { throw PosixFile.failure("create", path) }
        defer { close(fd) }
        let chunks = entry.chunks ?? []
        // Bytes of `allowance` this file holds: blocks launched and not yet written.
        var held = 0
        defer { allowance.give(held) }
        let failure: ConvoyError? = await withTaskGroup(of: (Int, Result<PlainBlock, ConvoyError>).self) { group in
            var ready: [Int: PlainBlock] = [:]
            var launched = 0
            var next = 0
            /// Launches the next block's fetch if the allowance has room for it, or if nothing of this file is in
            /// flight; whether it did.
            func launch() -> Bool {
                let index = launched
                let chunk = chunks[index]
                guard allowance.take(Int(chunk.length), evenOver: launched == next) else { return false }
                held += Int(chunk.length)
                group.addTask {
                    do throws(ConvoyError) {
                        // Two statements on purpose: written as `(index, .success(try await …))`, Swift 6.3's
                        // release build returned index 0 from every task (restores failed their length check).
                        // Async typed-throws return values are miscompiled in corners (swiftlang/swift#90722).
                        // A raw block is written from the buffer it was read into, without a copy.
                        let data = try await blocks.block(chunk.hash, checksum: chunk.checksum)
                        return (index, .success(data))
                    } catch {
                        return (index, .failure(ConvoyError(error.kind,
                                                            "cannot restore \(entry.path): \(error.message)")))
                    }
                }
                launched += 1
                return true
            }
            func launchAhead() {
                while launched < min(next + Self.prefetch, chunks.count) && launch() {}
            }
            launchAhead()
            while next < chunks.count {
                guard let (index, result) = await group.next() else { break }
                switch result {
                case .success(let data): ready[index] = data
                case .failure(let error):
                    group.cancelAll()
                    return error
                }
                while let data = ready.removeValue(forKey: next) {
                    let chunk = chunks[next]
                    guard data.count == Int(chunk.length) else {
                        group.cancelAll()
                        return ConvoyError(.driverFailure, "block \(chunk.hash) has \(data.count) bytes, "
                            + "the manifest says \(chunk.length)")
                    }
                    do throws(ConvoyError) {
                        try data.withUnsafeBytes { bytes throws(ConvoyError) in
                            try PosixFile.writeAll(fd, bytes, at: chunk.offset, path: path)
                        }
                    } catch {
                        group.cancelAll()
                        return error
                    }
                    counter.add(bytes: UInt64(chunk.length))
                    allowance.give(Int(chunk.length))
                    held -= Int(chunk.length)
                    next += 1
                }
                launchAhead()
            }
            return nil
        }
        if let failure { throw failure }
        // The plan checked the size against what an off_t holds; checked again rather than trusted to trap.
        guard let size = off_t(exactly: entry.size) else {
            throw ConvoyError(.driverFailure, "the manifest gives \(path) an impossible size \(entry.size)")
        }
        guard ftruncate(fd, size) == 0 else { throw PosixFile.failure("size", path) }
        try applyMetadata(entry, at: bytePath)
        counter.add(bytes: 0, items: 1)
    }

    /// What a restore creates, in the order it creates it.
    struct Plan {
        /// Directories, symlinks and special files, in manifest order (so parents come first).
        var skeleton: [Entry] = []
        var files: [Entry] = []
        var links: [Entry] = []
        /// Bytes of file data to write.
        var dataBytes: UInt64 = 0
    }

    /// Checks every entry before anything is written (ManifestRules, as a mount does), so that a manifest that would
    /// escape the target, or whose writes could not all land in their files, leaves the target as it was.
    static func plan(_ manifest: Manifest) throws(ConvoyError) -> Plan {
        var plan = Plan()
        var directories: Set<ByteString> = [""]
        var files: Set<ByteString> = []
        var seen: Set<ByteString> = []
        for entry in manifest.entries {
            try checkPath(entry.path, directories: directories)
            // A second entry at a path would fail (or replace the first) half way through the restore.
            guard seen.insert(entry.path).inserted else {
                throw refusal("two entries at \(ManifestRules.quoted(entry.path))")
            }
            guard !entry.path.isEmpty || entry.type == .directory else { throw refusal("a root that is no directory") }
            switch entry.type {
            case .directory:
                directories.insert(entry.path)
                plan.skeleton.append(entry)
            case .file:
                if let problem = ManifestRules.chunkProblem(entry) { throw refusal(problem) }
                // At most the file's size (checked just above); sizes add up without overflow, as the decoder
                // checked, but a manifest built in memory was not decoded.
                let stored = (entry.chunks ?? []).reduce(UInt64(0)) { $0 + UInt64($1.length) }
                let (total, overflow) = plan.dataBytes.addingReportingOverflow(stored)
                guard !overflow else { throw refusal("more than 2^64 bytes of data") }
                plan.dataBytes = total
                files.insert(entry.path)
                plan.files.append(entry)
            case .hardlink:
                plan.links.append(entry)
            case .symlink, .fifo, .socket, .charDevice, .blockDevice:
                plan.skeleton.append(entry)
            }
        }
        for entry in plan.links {
            let first = entry.target ?? ""
            try checkPath(first, directories: directories)
            guard files.contains(first) else {
                throw refusal("a hard link \(ManifestRules.quoted(entry.path)) to \(ManifestRules.quoted(first)), "
                    + "which is not a file in it")
            }
        }
        return plan
    }

    static func checkPath(_ path: ByteString, directories: Set<ByteString>) throws(ConvoyError) {
        if let problem = ManifestRules.pathProblem(path) { throw refusal(problem) }
        if path.isEmpty { return }
        let parent = ManifestRules.split(path).parent
        guard directories.contains(parent) else {
            throw ConvoyError(.driverFailure, "the manifest places \(ManifestRules.quoted(path)) under "
                + "\(ManifestRules.quoted(parent)), which is not a directory it restored")
        }
    }

    private static func refusal(_ problem: String) -> ConvoyError {
        ConvoyError(.driverFailure, "the manifest has \(problem); refusing to restore it")
    }

    /// Owner, mode (not for symlinks) and xattrs of `entry`, applied to `path`.
    public static func applyMetadata(_ entry: Entry, at path: ByteString) throws(ConvoyError) {
        try path.withCString { path throws(ConvoyError) in
            let shown = String(cString: path)
            guard lchown(path, entry.uid, entry.gid) == 0 else { throw PosixFile.failure("set owner of", shown) }
            if entry.type != .symlink {
                guard chmod(path, mode_t(entry.mode)) == 0 else { throw PosixFile.failure("set mode of", shown) }
            }
            for (name, encoded) in entry.xattrs ?? [:] {
                guard let value = Data(base64Encoded: encoded) else { continue }
                let result = name.withCString { name in
                    value.withUnsafeBytes { convoy_lsetxattr(path, name, $0.baseAddress, $0.count) }
                }
                guard result == 0 else { throw PosixFile.failure("set xattr \(name) on", shown) }
            }
        }
    }
}
