/// Wire types for snapshots, backups and jobs.
extension ClientAPI {
    public struct CreateSnapshotRequest: Codable, Sendable {
        public var volume: String
        public var name: String?
        public init(volume: String, name: String?) {
            self.volume = volume
            self.name = name
        }
        enum CodingKeys: String, CodingKey { case volume = "Volume", name = "Name" }
    }

    public struct Snapshot: Codable, Sendable, Equatable {
        public var name: String
        public var volumeName: String
        public var createdTime: String
        public var size: UInt64
        public var files: Int
        public var bytesRead: UInt64
        public var newBytesStored: UInt64
        /// What a driver that keeps its own snapshots (devicemapper) records for this one; its `driverKey` entry
        /// names that driver.
        public var driverInfo: [String: String]?
        public static let driverKey = "Driver"
        /// Entries of a busy volume the snapshot left out (each "path: why"), nil when it holds the whole tree.
        public var skipped: [String]?

        /// The driver that keeps this snapshot itself, nil for a file snapshot in the daemon's local store.
        public var keepingDriver: String? { driverInfo.map { $0[Self.driverKey] ?? "" } }

        public init(name: String, volumeName: String, createdTime: String, size: UInt64, files: Int,
                    bytesRead: UInt64, newBytesStored: UInt64, driverInfo: [String: String]? = nil,
                    skipped: [String]? = nil) {
            self.name = name
            self.volumeName = volumeName
            self.createdTime = createdTime
            self.size = size
            self.files = files
            self.bytesRead = bytesRead
            self.newBytesStored = newBytesStored
            self.driverInfo = driverInfo
            self.skipped = skipped
        }

        enum CodingKeys: String, CodingKey {
            case name = "Name", volumeName = "VolumeName", createdTime = "CreatedTime", size = "Size"
            case files = "Files", bytesRead = "BytesRead", newBytesStored = "NewBytesStored", driverInfo = "DriverInfo"
            case skipped = "Skipped"
        }
    }

    /// A snapshot to back up, or a file volume to back up straight from its directory (read once, written once,
    /// nothing kept in the local snapshot store): exactly one of them.
    public struct CreateBackupRequest: Codable, Sendable {
        public var snapshot: String?
        public var volume: String?
        public var destination: String
        public init(snapshot: String, destination: String) {
            self.snapshot = snapshot
            self.destination = destination
        }
        public init(volume: String, destination: String) {
            self.volume = volume
            self.destination = destination
        }
        enum CodingKeys: String, CodingKey { case snapshot = "Snapshot", volume = "Volume", destination = "Dest" }
    }

    public struct BackupURLRequest: Codable, Sendable {
        public var url: String
        public init(url: String) { self.url = url }
        enum CodingKeys: String, CodingKey { case url = "URL" }
    }

    public struct Backup: Codable, Sendable, Equatable {
        public var url: String
        public var backupName: String
        public var volumeName: String
        public var snapshotName: String
        public var createdTime: String
        public var volumeSize: UInt64
        public var size: UInt64
        public var files: Int
        public var blocks: Int
        /// The host that wrote the backup (nil: an older backup, or one kept by a driver's own service).
        public var host: String?

        public init(url: String, backupName: String, volumeName: String, snapshotName: String, createdTime: String,
                    volumeSize: UInt64, size: UInt64, files: Int, blocks: Int, host: String? = nil) {
            self.url = url
            self.backupName = backupName
            self.volumeName = volumeName
            self.snapshotName = snapshotName
            self.createdTime = createdTime
            self.volumeSize = volumeSize
            self.size = size
            self.files = files
            self.blocks = blocks
            self.host = host
        }

        enum CodingKeys: String, CodingKey {
            case url = "BackupURL", backupName = "BackupName", volumeName = "VolumeName", snapshotName = "SnapshotName"
            case createdTime = "CreatedTime", volumeSize = "VolumeSize", size = "Size", files = "Files",
                 blocks = "Blocks", host = "Host"
        }
    }

    public struct Job: Codable, Sendable, Equatable {
        public enum State: String, Codable, Sendable { case running, succeeded, failed, interrupted }

        public var id: String
        public var kind: String
        public var target: String
        public var state: State
        public var phase: String
        public var bytesDone: UInt64
        public var bytesTotal: UInt64
        public var itemsDone: Int
        public var itemsTotal: Int
        public var startedAt: String
        public var finishedAt: String?
        public var result: [String: String]?
        public var error: String?

        public init(id: String, kind: String, target: String, state: State, phase: String, bytesDone: UInt64,
                    bytesTotal: UInt64, itemsDone: Int, itemsTotal: Int, startedAt: String, finishedAt: String?,
                    result: [String: String]?, error: String?) {
            self.id = id
            self.kind = kind
            self.target = target
            self.state = state
            self.phase = phase
            self.bytesDone = bytesDone
            self.bytesTotal = bytesTotal
            self.itemsDone = itemsDone
            self.itemsTotal = itemsTotal
            self.startedAt = startedAt
            self.finishedAt = finishedAt
            self.result = result
            self.error = error
        }

        enum CodingKeys: String, CodingKey {
            case id = "ID", kind = "Kind", target = "Target", state = "State", phase = "Phase"
            case bytesDone = "BytesDone", bytesTotal = "BytesTotal", itemsDone = "ItemsDone", itemsTotal = "ItemsTotal"
            case startedAt = "StartedAt", finishedAt = "FinishedAt", result = "Result", error = "Error"
        }
    }
}
