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

    public init(repository: BackupRepository) {
        self.repository = repository
    }

    public func restore(_ manifest: Manifest, into target: String, progress: ProgressSink = { _ in }) async throws(ConvoyError) {
        let total = manifest.entries.reduce(UInt64(0)) { $0 + (($1.chunks ?? []).reduce(UInt64(0)) { $0 + UInt64($1.length) }) }
        var state = WorkProgress(phase: "restoring", bytesTotal: total, itemsTotal: manifest.entries.count)
        progress(state)
        var directories: Set<String> = [""]
        var cache = BlockCache(repository: repository)

        for entry in manifest.entries {
            try Self.checkPath(entry.path, directories: directories)
            let path = entry.path.isEmpty ? target : target + "/" + entry.path
            switch entry.type {
            case .directory:
                if !entry.path.isEmpty {
                    guard mkdir(path, 0o700) == 0 else { throw PosixFile.failure("create directory", path) }
                }
                directories.insert(entry.path)
            case .file:
                let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
                guard fd >= 0 else { throw PosixFile.failure("create", path) }
                do throws(ConvoyError) {
                    for chunk in entry.chunks ?? [] {
                        let data = try await cache.block(chunk.hash, for: entry.path)
                        guard data.count == Int(chunk.length) else {
                            throw ConvoyError(.driverFailure, "block \(chunk.hash) has \(data.count) bytes, the manifest says \(chunk.length)")
                        }
                        let failure: ConvoyError? = data.withUnsafeBytes { raw in
                            do throws(ConvoyError) { try PosixFile.writeAll(fd, raw, at: chunk.offset, path: path) } catch { return error }
                            return nil
                        }
                        if let failure { throw failure }
                        state.bytesDone += UInt64(chunk.length)
                        progress(state)
                    }
                    // Extends to the full size; whatever was never written stays a hole.
                    guard ftruncate(fd, off_t(entry.size)) == 0 else { throw PosixFile.failure("size", path) }
                    guard fsync(fd) == 0 else { throw PosixFile.failure("sync", path) }
                } catch {
                    close(fd)
                    throw error
                }
                close(fd)
            case .symlink:
                guard symlink(entry.target ?? "", path) == 0 else { throw PosixFile.failure("create symlink", path) }
            case .hardlink:
                let first = entry.target ?? ""
                try Self.checkPath(first, directories: directories)
                guard link(target + "/" + first, path) == 0 else { throw PosixFile.failure("create hard link", path) }
            case .fifo:
                guard mkfifo(path, 0o600) == 0 else { throw PosixFile.failure("create fifo", path) }
            case .socket, .charDevice, .blockDevice:
                let type: mode_t = entry.type == .socket ? S_IFSOCK : entry.type == .charDevice ? S_IFCHR : S_IFBLK
                guard mknod(path, type | 0o600, dev_t(entry.rdev ?? 0)) == 0 else { throw PosixFile.failure("create node", path) }
            }
            if entry.type != .hardlink { try Self.applyMetadata(entry, at: path) }
            state.itemsDone += 1
        }
        // Times last, deepest first: creating children changes a directory's mtime.
        for entry in manifest.entries.reversed() where entry.type != .hardlink {
            let path = entry.path.isEmpty ? target : target + "/" + entry.path
            var times = [timespec(tv_sec: Int(entry.mtimeSeconds), tv_nsec: Int(entry.mtimeNanoseconds)),
                         timespec(tv_sec: Int(entry.mtimeSeconds), tv_nsec: Int(entry.mtimeNanoseconds))]
            guard utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW) == 0 else { throw PosixFile.failure("set times of", path) }
        }
        progress(WorkProgress(phase: "restored", bytesDone: total, bytesTotal: total,
                              itemsDone: manifest.entries.count, itemsTotal: manifest.entries.count))
    }

    static func checkPath(_ path: String, directories: Set<String>) throws(ConvoyError) {
        if path.isEmpty { return }
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        guard !path.hasPrefix("/"), !components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw ConvoyError(.driverFailure, "the manifest holds an unsafe path '\(path)'; refusing to restore it")
        }
        let parent = components.dropLast().joined(separator: "/")
        guard directories.contains(parent) else {
            throw ConvoyError(.driverFailure, "the manifest places '\(path)' under '\(parent)', which is not a directory it restored")
        }
    }

    static func applyMetadata(_ entry: Entry, at path: String) throws(ConvoyError) {
        guard lchown(path, entry.uid, entry.gid) == 0 else { throw PosixFile.failure("set owner of", path) }
        if entry.type != .symlink {
            guard chmod(path, mode_t(entry.mode)) == 0 else { throw PosixFile.failure("set mode of", path) }
        }
        for (name, encoded) in entry.xattrs ?? [:] {
            guard let value = Data(base64Encoded: encoded) else { continue }
            let result = value.withUnsafeBytes { convoy_lsetxattr(path, name, $0.baseAddress, $0.count) }
            guard result == 0 else { throw PosixFile.failure("set xattr \(name) on", path) }
        }
    }
}

/// The last few decoded blocks: consecutive chunks of one file often repeat (zeros, copies).
struct BlockCache {
    let repository: BackupRepository
    private var entries: [(String, [UInt8])] = []

    init(repository: BackupRepository) {
        self.repository = repository
    }

    mutating func block(_ hash: String, for path: String) async throws(ConvoyError) -> [UInt8] {
        if let hit = entries.first(where: { $0.0 == hash }) { return hit.1 }
        let data: [UInt8]
        do {
            data = try await repository.block(hash)
        } catch {
            throw ConvoyError(error.kind, "cannot restore \(path.isEmpty ? "/" : path): \(error.message)")
        }
        entries.append((hash, data))
        if entries.count > 4 { entries.removeFirst() }
        return data
    }
}
