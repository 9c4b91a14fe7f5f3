import ConvoyCore
import Foundation

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

    /// The tar.gz of a single-file (vfs) backup. The path recorded in the configuration must lie in the volume's
    /// own BackupFiles directory.
    public func singleFileArchive(volume: String, config: BackupConfig) async throws(ConvoyError) -> [UInt8] {
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
        return try await store.get(relative)
    }
}
