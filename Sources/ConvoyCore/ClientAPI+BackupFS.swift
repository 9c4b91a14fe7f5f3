/// Wire types for BackupFS: browsing mounts of backups and lazily restored volumes.
extension ClientAPI {
    public struct BackupMountRequest: Codable, Sendable {
        public var url: String
        public var path: String
        public init(url: String, path: String) {
            self.url = url
            self.path = path
        }
        enum CodingKeys: String, CodingKey { case url = "URL", path = "Path" }
    }

    public struct BackupUnmountRequest: Codable, Sendable {
        public var path: String
        public init(path: String) { self.path = path }
        enum CodingKeys: String, CodingKey { case path = "Path" }
    }

    /// One backup mounted for browsing. A block backup's image is served by FUSE at `image` and its filesystem
    /// is mounted at `path` through the read-only loop device `loopDevice`.
    public struct BackupMountInfo: Codable, Sendable, Equatable {
        public var url: String
        public var path: String
        public var mountedAt: String
        public var image: String?
        public var loopDevice: String?
        public init(url: String, path: String, mountedAt: String, image: String? = nil, loopDevice: String? = nil) {
            self.url = url
            self.path = path
            self.mountedAt = mountedAt
            self.image = image
            self.loopDevice = loopDevice
        }
        enum CodingKeys: String, CodingKey {
            case url = "URL", path = "Path", mountedAt = "MountedAt", image = "Image", loopDevice = "LoopDevice"
        }
    }

    /// Where a lazily restored volume's hydration stands.
    public struct Hydration: Codable, Sendable, Equatable {
        public enum State: String, Codable, Sendable {
            /// Data is being fetched from the backup (a file volume's files, a block volume's blocks).
            case hydrating
            /// Everything is local; the volume becomes an ordinary one (a plain directory, a thin volume without
            /// origin) when it next has no references.
            case complete
            /// Hydration stopped on an error (in `error`); it is retried at the next daemon start.
            case failed
            /// Not a lazy volume (any more): all its data is its own.
            case local
        }

        public var state: State
        public var backup: String
        public var bytesDone: UInt64
        public var bytesTotal: UInt64
        public var filesDone: Int
        public var filesTotal: Int
        /// The job that hydrates (follow it with `convoy hydrate VOL --wait`).
        public var job: String?
        public var error: String?

        public init(state: State, backup: String, bytesDone: UInt64, bytesTotal: UInt64, filesDone: Int,
                    filesTotal: Int, job: String?, error: String?) {
            self.state = state
            self.backup = backup
            self.bytesDone = bytesDone
            self.bytesTotal = bytesTotal
            self.filesDone = filesDone
            self.filesTotal = filesTotal
            self.job = job
            self.error = error
        }

        enum CodingKeys: String, CodingKey {
            case state = "State", backup = "Backup", bytesDone = "BytesDone", bytesTotal = "BytesTotal"
            case filesDone = "FilesDone", filesTotal = "FilesTotal", job = "Job", error = "Error"
        }
    }
}
