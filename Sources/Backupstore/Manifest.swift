import ConvoyCore

/// A backup: what was backed up and the complete map from its content to blocks, so restoring one backup never
/// needs another.
public struct Manifest: Sendable, Equatable {
    /// 2: chunks may carry a checksum (entry flag 32 in the binary form). 3: the manifest names the host that
    /// wrote it. Older convoy refuses a newer format with "upgrade convoy" rather than misreading it.
    public static let currentFormat = 3

    public enum Kind: String, Codable, Sendable {
        /// A file tree (vfs, glusterfs).
        case files
        /// A block device's image: one entry, `volume.img`, whose chunks are the device's mapped blocks at their
        /// offsets (unmapped regions are holes, read as zeros).
        case blocks
    }

    /// The image entry of a block backup: its file name, and its path in the manifest.
    public static let imageName = "volume.img"
    public static let imagePath = ByteString(imageName)

    public var format: Int
    public var id: String
    public var volume: String
    public var kind: Kind
    public var createdAt: String
    /// The snapshot the backup was taken from, when there was one.
    public var snapshot: String?
    /// The backup whose unchanged files were reused without rereading them.
    public var parent: String?
    /// The volume's size as recorded by the daemon (0 when unknown).
    public var volumeSize: UInt64
    public var entries: [Entry]
    public var stats: Stats
    /// The id of the host whose daemon wrote the backup (format 3; nil in older manifests).
    public var host: String?

    public init(id: String, volume: String, kind: Kind, createdAt: String, snapshot: String?, parent: String?,
                volumeSize: UInt64, entries: [Entry], stats: Stats) {
        self.format = Self.currentFormat
        self.id = id
        self.volume = volume
        self.kind = kind
        self.createdAt = createdAt
        self.snapshot = snapshot
        self.parent = parent
        self.volumeSize = volumeSize
        self.entries = entries
        self.stats = stats
    }

    /// Every distinct block the backup needs.
    public var blockHashes: Set<String> {
        var hashes = Set<String>()
        for entry in entries { for chunk in entry.chunks ?? [] { hashes.insert(chunk.hash) } }
        return hashes
    }

    public struct Stats: Codable, Sendable, Equatable {
        public var files: Int = 0
        public var directories: Int = 0
        /// Logical bytes of file data in the tree.
        public var bytes: UInt64 = 0
        /// Bytes read from the source (unchanged files are not reread).
        public var bytesRead: UInt64 = 0
        /// Blocks and stored (compressed) bytes this backup added to the store.
        public var newBlocks: Int = 0
        public var newBytesStored: UInt64 = 0
        public init() {}
    }
}

/// One entry of a file tree. Paths are relative to the volume's root, `/`-separated, never `.`, `..` or absolute.
/// Paths, link targets and xattr names are the bytes the filesystem holds (ByteString), not text.
public struct Entry: Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case directory, file, symlink, hardlink, fifo, socket, charDevice, blockDevice
    }

    public var path: ByteString
    public var type: Kind
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var mtimeSeconds: Int64
    public var mtimeNanoseconds: Int64
    public var size: UInt64
    /// Symlink target, or for a hard link the path of the entry it links to.
    public var target: ByteString?
    public var rdev: UInt64?
    /// Extended attributes, values base64-encoded.
    public var xattrs: [ByteString: String]?
    /// File data; gaps between chunks (and after the last, up to `size`) are holes.
    public var chunks: [Chunk]?
    /// Source inode, to recognise an unchanged file in the next backup.
    public var inode: UInt64?

    public init(path: ByteString, type: Kind, mode: UInt32, uid: UInt32, gid: UInt32, mtimeSeconds: Int64,
                mtimeNanoseconds: Int64, size: UInt64) {
        self.path = path
        self.type = type
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.mtimeSeconds = mtimeSeconds
        self.mtimeNanoseconds = mtimeNanoseconds
        self.size = size
    }
}

public struct Chunk: Codable, Sendable, Equatable {
    public var hash: String
    public var offset: UInt64
    public var length: UInt32
    /// The block's XXH3-128, checked instead of re-hashing with SHA-256 when it is read; nil in manifests of
    /// format 1 (then reads check the SHA-256).
    public var checksum: BlockChecksum?

    public init(hash: String, offset: UInt64, length: UInt32, checksum: BlockChecksum? = nil) {
        self.hash = hash
        self.offset = offset
        self.length = length
        self.checksum = checksum
    }
}

/// The per-volume record in a store.
public struct VolumeRecordInStore: Codable, Sendable, Equatable {
    public var name: String
    public var size: UInt64
    public var lastBackup: String?
    public var updatedAt: String
    /// The host id of the daemon that wrote the record (absent in records of older convoy).
    public var host: String?
}
