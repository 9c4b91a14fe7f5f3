import Backupstore
import ConvoyCore
import Foundation

/// Valid inputs for each target, so the fuzzer starts from real structures rather than discovering the format
/// byte by byte: manifests of a varied tree, of a block image and of format 1, a pack index, and records.
enum Seeds {
    /// Writes `<directory>/<target>/seed-<n>` for every target; false (after saying why) on a failure, or when a
    /// target refuses one of its seeds (the fuzzer would then start from broken structures).
    static func write(to directory: String) -> Bool {
        for target in FuzzTarget.allCases {
            let folder = directory + "/" + target.rawValue
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                for (index, seed) in inputs(for: target).enumerated() {
                    try target.run(seed)
                    try Data(seed).write(to: URL(fileURLWithPath: folder + "/seed-\(index)"))
                }
            } catch {
                FileHandle.standardError.write(Data("convoy-fuzz: seeds of \(folder): \(error)\n".utf8))
                return false
            }
        }
        return true
    }

    static func inputs(for target: FuzzTarget) -> [[UInt8]] {
        let manifests = [tree(), image(), formatOne(), rootOnly()]
        let blocks = [(hash: hash(1), offset: 0, length: 4096), (hash: hash(2), offset: 4096, length: 1 << 20),
                      (hash: hash(3), offset: (1 << 20) + 4096, length: 17)]
        let record = Array(#"{"lastBackup":"backup-2","name":"vol1","size":1073741824,"updatedAt":"2026-01-02"}"#
            .utf8)
        switch target {
        case .manifest, .tree: return manifests.map(FuzzEntryPoints.encode)
        case .packindex: return [FuzzEntryPoints.packIndex(blocks, sealed: false)]
        case .record: return [record, Array(#"{"name":"v","size":0,"updatedAt":""}"#.utf8)]
        case .sealed:
            return manifests.prefix(2).map(FuzzEntryPoints.seal) + [FuzzEntryPoints.packIndex(blocks, sealed: true),
                                                                    FuzzEntryPoints.sealRecord(json: record)]
        }
    }

    /// A 64-digit hash that differs per `seed`.
    static func hash(_ seed: UInt8) -> String {
        let digits = String(seed, radix: 16)
        return String(repeating: digits.count == 1 ? "0" + digits : digits, count: 32)
    }

    static func entry(_ path: ByteString, _ type: Entry.Kind, size: UInt64 = 0, target: ByteString? = nil) -> Entry {
        var entry = Entry(path: path, type: type, mode: type == .directory ? 0o755 : 0o644, uid: 1000, gid: 100,
                          mtimeSeconds: 1_700_000_000, mtimeNanoseconds: 123_456_789, size: size)
        entry.target = target
        entry.inode = UInt64(path.count + 2)
        return entry
    }

    /// Every kind of entry, nested directories, xattrs, a sparse file, a hard link and chunks with and without
    /// checksums.
    static func tree() -> Manifest {
        var file = entry("dir/a.txt", .file, size: 8192)
        file.chunks = [Chunk(hash: hash(1), offset: 0, length: 4096, checksum: BlockChecksum(high: 1, low: 2)),
                       Chunk(hash: hash(2), offset: 4096, length: 4096)]
        file.xattrs = ["user.note": "aGVsbG8=", "security.selinux": ""]
        var sparse = entry("dir/sub/sparse", .file, size: 64 << 20)
        sparse.chunks = [Chunk(hash: hash(3), offset: 32 << 20, length: 1 << 20,
                               checksum: BlockChecksum(high: 3, low: 4))]
        var empty = entry("dir/empty", .file)
        empty.chunks = []
        var device = entry("dev", .charDevice)
        device.rdev = 0x0103
        // Names are bytes: one that is not UTF-8 (with an xattr whose name is not either, and a link to it), and
        // é composed and decomposed, two names.
        let latin1 = ByteString(bytes: Array("caf".utf8) + [0xE9])
        var notText = entry(latin1, .file)
        notText.chunks = []
        notText.xattrs = [ByteString(bytes: Array("user.".utf8) + [0xFF]): "AA=="]
        let entries = [entry("", .directory), entry("dir", .directory), file, entry("dir/sub", .directory), sparse,
                       empty, entry("link", .symlink, target: "dir/a.txt"),
                       entry("hard", .hardlink, target: "dir/a.txt"), entry("pipe", .fifo), entry("sock", .socket),
                       device, entry("disk", .blockDevice), notText, entry("to-latin1", .symlink, target: latin1),
                       entry("\u{E9}", .directory), entry("e\u{301}", .directory)]
        var stats = Manifest.Stats()
        stats.files = 3
        stats.directories = 3
        stats.bytes = 8192 + (64 << 20)
        return Manifest(id: "backup-0123456789abcdef", volume: "vol1", kind: .files, createdAt: "2026-01-02T03:04:05Z",
                        snapshot: "snap-1", parent: "backup-fedcba9876543210", volumeSize: 1 << 30, entries: entries,
                        stats: stats)
    }

    /// A block backup: the image entry and its blocks, one missing (a hole).
    static func image() -> Manifest {
        var image = entry(Manifest.imagePath, .file, size: 16 << 20)
        image.chunks = [0, 1, 3].map { index in
            Chunk(hash: hash(UInt8(10 + index)), offset: UInt64(index) << 22, length: 4 << 20,
                  checksum: BlockChecksum(high: UInt64(index), low: 7))
        }
        return Manifest(id: "backup-1", volume: "block", kind: .blocks, createdAt: "2026-01-02T03:04:05Z",
                        snapshot: "snap", parent: nil, volumeSize: 16 << 20, entries: [entry("", .directory), image],
                        stats: Manifest.Stats())
    }

    /// Format 1: chunks without checksums.
    static func formatOne() -> Manifest {
        var manifest = tree()
        manifest.format = 1
        for index in manifest.entries.indices {
            manifest.entries[index].chunks = manifest.entries[index].chunks?.map {
                Chunk(hash: $0.hash, offset: $0.offset, length: $0.length)
            }
        }
        return manifest
    }

    static func rootOnly() -> Manifest {
        Manifest(id: "backup-2", volume: "v", kind: .files, createdAt: "", snapshot: nil, parent: nil, volumeSize: 0,
                 entries: [entry("", .directory)], stats: Manifest.Stats())
    }
}
