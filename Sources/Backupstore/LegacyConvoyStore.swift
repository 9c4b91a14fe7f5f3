import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Read support for Rancher Convoy 0.5 object stores, so its backups can be restored (see the Convoy 0.5 item of
/// "The backup store (format version 2)" in docs/design.md):
///
///     convoy-objectstore/volumes/<v[0:2]>/<v[2:4]>/<v>/volume.cfg
///     convoy-objectstore/volumes/<v[0:2]>/<v[2:4]>/<v>/backups/backup_<id>.cfg     JSON: Name, VolumeName,
///                                                 SnapshotName, CreatedTime, and SingleFile{FilePath} or Blocks
///     convoy-objectstore/volumes/<v[0:2]>/<v[2:4]>/<v>/BackupFiles/<id>.bak         tar.gz of a vfs volume
public struct LegacyConvoyStore: Sendable {
    public let store: any ObjectStore

    public init(store: any ObjectStore) {
        self.store = store
    }

    public struct BackupConfig: Codable, Sendable {
        public struct SingleFile: Codable, Sendable {
            public var FilePath: String?
        }
        public struct Block: Codable, Sendable {
            public var Offset: Int64
            public var BlockChecksum: String
        }
        public var Name: String?
        public var VolumeName: String?
        public var SnapshotName: String?
        public var CreatedTime: String?
        public var SingleFile: SingleFile?
        public var Blocks: [Block]?
    }

    static func volumePath(_ volume: String) -> String {
        let bytes = Array(volume.utf8)
        let first = String(decoding: bytes.prefix(2), as: UTF8.self)
        let second = String(decoding: bytes.dropFirst(2).prefix(2), as: UTF8.self)
        return "convoy-objectstore/volumes/\(first)/\(second)/\(volume)"
    }

    /// The backup's configuration, or nil when the store has no such Convoy backup.
    public func backupConfig(volume: String, backup: String) async throws(ConvoyError) -> BackupConfig? {
        try ObjectName.validate(volume)
        try ObjectName.validate(backup, kind: "backup")
        let key = "\(Self.volumePath(volume))/backups/backup_\(backup).cfg"
        let bytes: [UInt8]
        do { bytes = try await store.get(key) } catch where error.kind == .notFound { return nil }
        do {
            return try JSONDecoder().decode(BackupConfig.self, from: Data(bytes))
        } catch {
            throw ConvoyError(.driverFailure, "the Convoy backup configuration \(key) cannot be read: \(error)")
        }
    }

    /// Copies the tar.gz of a single-file (vfs) backup to the file `path`, a piece at a time (an archive is as
    /// large as its volume: it never sits in memory whole). Returns its size.
    public func downloadSingleFileArchive(volume: String, config: BackupConfig,
                                          to path: String) async throws(ConvoyError) -> UInt64 {
        let key = try singleFileArchiveKey(volume: volume, config: config)
        let directory = String(key[...(key.lastIndex(of: "/") ?? key.startIndex)])
        let listed = try await store.list(prefix: directory).first { $0.key == key }
        guard let listed else { throw .notFound("the Convoy backup file \(key) is not in \(store.location)") }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw PosixFile.failure("create", path) }
        defer { close(fd) }
        // Small pieces: each is read on one of the I/O pool's threads, whose malloc arenas keep what they freed.
        let piece = 2 << 20
        var offset = 0
        while listed.size.map({ offset < $0 }) ?? true {
            let want = listed.size.map { min(piece, $0 - offset) } ?? piece
            let bytes = try await store.getRange(key, offset: offset, length: want)
            var failure: ConvoyError?
            bytes.withUnsafeBytes { raw in
                do throws(ConvoyError) { try PosixFile.writeAll(fd, raw, at: UInt64(offset), path: path) } catch {
                    failure = error
                }
            }
            if let failure { throw failure }
            offset += bytes.count
            if bytes.count < want { break }
        }
        if let size = listed.size, offset != size {
            throw ConvoyError(.driverFailure, "the Convoy backup file \(key) ended at \(offset) of \(size) bytes")
        }
        return UInt64(offset)
    }

    /// The key of a single-file (vfs) backup's tar.gz. The path recorded in the configuration must lie in the
    /// volume's own BackupFiles directory.
    func singleFileArchiveKey(volume: String, config: BackupConfig) throws(ConvoyError) -> String {
        guard let path = config.SingleFile?.FilePath, !path.isEmpty else {
            if !(config.Blocks ?? []).isEmpty {
                throw .invalid("this Convoy backup of \(volume) is a block (devicemapper) backup; "
                    + "restore it with the devicemapper driver")
            }
            throw ConvoyError(.driverFailure, "the Convoy backup of \(volume) names no backup file")
        }
        let expectedDirectory = "\(Self.volumePath(volume))/BackupFiles/"
        let relative = path.hasPrefix("/") ? String(path.dropFirst()) : path
        guard relative.hasPrefix(expectedDirectory), !relative.dropFirst(expectedDirectory.count).contains("/"),
              !relative.contains("..") else {
            throw ConvoyError(.driverFailure,
                              "the Convoy backup of \(volume) points outside its volume (\(path)); refusing it")
        }
        return relative
    }
}
