import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Backs up a directory tree into a repository: scans it, splits changed files into content-defined chunks,
/// uploads the blocks the store does not have, then writes the manifest. Files unchanged since the parent backup
/// (same size, mtime and inode) are not reread: their chunks are taken from the parent's manifest.
public struct FileBackupWriter: Sendable {
    public let repository: BackupRepository
    public let chunker: FastCDC

    public init(repository: BackupRepository, chunker: FastCDC = .standard) {
        self.repository = repository
        self.chunker = chunker
    }

    public struct Request: Sendable {
        public var source: String
        public var volume: String
        public var backupID: String
        public var snapshot: String?
        public var parent: Manifest?
        public var volumeSize: UInt64

        public init(source: String, volume: String, backupID: String, snapshot: String?, parent: Manifest?, volumeSize: UInt64) {
            self.source = source
            self.volume = volume
            self.backupID = backupID
            self.snapshot = snapshot
            self.parent = parent
            self.volumeSize = volumeSize
        }
    }

    public func backup(_ request: Request, progress: ProgressSink = { _ in }) async throws(ConvoyError) -> Manifest {
        try ObjectName.validate(request.volume)
        try ObjectName.validate(request.backupID, kind: "backup")
        try await repository.prepare()
        let lease = try await StoreLease.write(.backup, in: repository)
        do {
            try await lease.waitForCollectors()
            let manifest = try await run(request, lease: lease, progress: progress)
            await lease.release()
            return manifest
        } catch {
            await lease.release()
            throw error
        }
    }

    private func run(_ request: Request, lease: StoreLease, progress: ProgressSink) async throws(ConvoyError) -> Manifest {
        progress(WorkProgress(phase: "scanning"))
        var entries = try TreeScanner(root: request.source).scan()
        var known = try await repository.blockHashes()
        var previous: [String: Entry] = [:]
        for entry in request.parent?.entries ?? [] where entry.type == .file { previous[entry.path] = entry }

        var stats = Manifest.Stats()
        var toRead: UInt64 = 0
        for entry in entries where entry.type == .file {
            stats.files += 1
            stats.bytes += entry.size
            if !isUnchanged(entry, previous[entry.path]) { toRead += entry.size }
        }
        stats.directories = entries.filter { $0.type == .directory }.count
        var state = WorkProgress(phase: "backing up", bytesTotal: toRead, itemsTotal: stats.files)
        progress(state)

        for index in entries.indices where entries[index].type == .file {
            let entry = entries[index]
            if let old = previous[entry.path], isUnchanged(entry, old) {
                entries[index].chunks = old.chunks
            } else {
                entries[index].chunks = try await storeFile(
                    request.source + "/" + entry.path, size: entry.size, known: &known, stats: &stats) { bytes in
                    state.bytesDone += bytes
                    progress(state)
                }
                // A file that changed while it was read is backed up as read; its next backup rereads it.
            }
            state.itemsDone += 1
            try await lease.renewIfDue()
        }
        stats.bytesRead = state.bytesDone

        let manifest = Manifest(
            id: request.backupID, volume: request.volume, kind: .files, createdAt: Date().formatted(.iso8601),
            snapshot: request.snapshot, parent: request.parent?.id, volumeSize: request.volumeSize,
            entries: entries, stats: stats)
        progress(WorkProgress(phase: "writing manifest", bytesDone: state.bytesDone, bytesTotal: toRead,
                              itemsDone: stats.files, itemsTotal: stats.files))
        try await repository.putManifest(manifest)
        try await repository.putVolumeRecord(VolumeRecordInStore(
            name: request.volume, size: request.volumeSize, lastBackup: request.backupID,
            updatedAt: manifest.createdAt))
        return manifest
    }

    private func isUnchanged(_ entry: Entry, _ old: Entry?) -> Bool {
        guard let old, old.chunks != nil else { return false }
        return old.size == entry.size && old.mtimeSeconds == entry.mtimeSeconds
            && old.mtimeNanoseconds == entry.mtimeNanoseconds && old.inode == entry.inode
    }

    /// Chunks one file's data regions and uploads the blocks the store lacks.
    private func storeFile(_ path: String, size: UInt64, known: inout Set<String>, stats: inout Manifest.Stats,
                           read: (UInt64) -> Void) async throws(ConvoyError) -> [Chunk] {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw PosixFile.failure("open", path) }
        defer { close(fd) }
        var chunks: [Chunk] = []
        let capacity = chunker.maximum * 2
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        for (regionStart, regionLength) in PosixFile.dataRegions(fd, size: size) {
            var filled = 0
            var bufferOffset = regionStart  // file offset of buffer[0]
            var readOffset = regionStart
            let regionEnd = regionStart + regionLength
            while true {
                // Keep at least `maximum` bytes in the buffer unless the region ends first.
                if filled < chunker.maximum && readOffset < regionEnd {
                    let want = Int(min(UInt64(capacity - filled), regionEnd - readOffset))
                    let got = try PosixFile.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<(filled + want)]),
                                                 at: readOffset, path: path)
                    filled += got
                    readOffset += UInt64(got)
                    if got < want { readOffset = regionEnd }  // the file shrank while being read
                }
                if filled == 0 { break }
                let length = chunker.cut(UnsafeRawBufferPointer(rebasing: buffer[0..<filled]))
                let piece = UnsafeRawBufferPointer(rebasing: buffer[0..<length])
                let hash = BlockCodec.hash(piece)
                if !known.contains(hash) {
                    let encoded = BlockCodec.encode(piece)
                    try await repository.putBlock(hash: hash, encoded: encoded)
                    known.insert(hash)
                    stats.newBlocks += 1
                    stats.newBytesStored += UInt64(encoded.count)
                }
                chunks.append(Chunk(hash: hash, offset: bufferOffset, length: UInt32(length)))
                read(UInt64(length))
                if length < filled {
                    if let base = buffer.baseAddress { _ = memmove(base, base + length, filled - length) }
                }
                filled -= length
                bufferOffset += UInt64(length)
            }
        }
        return chunks
    }
}
