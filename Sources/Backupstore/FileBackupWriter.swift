import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Backs up a directory tree into a repository: scans it, splits changed files into content-defined chunks,
/// uploads the blocks the store does not have, then writes the manifest. Files unchanged since the parent backup
/// (same size, mtime and inode) are not reread: their chunks are taken from the parent's manifest. Changed files
/// are reread, keeping the parent's chunks whose bytes are unchanged (`ParentChunks`).
public struct FileBackupWriter: Sendable {
    public let repository: BackupRepository

    public init(repository: BackupRepository) {
        self.repository = repository
    }

    public struct Request: Sendable {
        public var source: String
        public var volume: String
        public var backupID: String
        public var snapshot: String?
        public var parent: Manifest?
        public var volumeSize: UInt64
        /// When the backup is taken (ISO 8601); now when nil. A scheduled one is stamped with its clock's time.
        public var createdAt: String?

        public init(source: String, volume: String, backupID: String, snapshot: String?, parent: Manifest?,
                    volumeSize: UInt64, createdAt: String? = nil) {
            self.createdAt = createdAt
            self.source = source
            self.volume = volume
            self.backupID = backupID
            self.snapshot = snapshot
            self.parent = parent
            self.volumeSize = volumeSize
        }
    }

    /// What a backup wrote, and what of the tree it left out (entries that vanished, moved or were replaced
    /// while it ran): the first `skippedListed` of them, and how many in all.
    public struct Outcome: Sendable {
        public var manifest: Manifest
        public var skipped: [SkippedEntry]
        public var skippedCount: Int
        /// Bytes of changed files hashed with SHA-256 and looked up; the rest of them matched the parent's chunks.
        public var bytesHashed: UInt64
    }

    static let skippedListed = 1000

    public func backup(_ request: Request,
                       progress: @escaping ProgressSink = { _ in }) async throws(ConvoyError) -> Outcome {
        return try await StoreLease.whileWriting(backup: request.backupID, of: request.volume,
                                                 in: repository) { lease throws(ConvoyError) in
            try await run(request, lease: lease, progress: progress)
        }
    }

    /// Chunks in flight between the reader and the upload tasks (memory: this many × the largest chunk).
    static let pipelineWidth = 6

    struct UploadResult: Sendable {
        var slot: Int
        var hash: String
        var checksum: BlockChecksum
        var storedBytes: UInt64
        var isNew: Bool
    }

    private func run(_ request: Request, lease: StoreLease,
                     progress: @escaping ProgressSink) async throws(ConvoyError) -> Outcome {
        let root: DirectoryDescriptor
        do {
            root = try DirectoryDescriptor.open(request.source)
        } catch {
            throw error.convoyError()
        }
        // The scan starts first: it also overlaps with listing the store's blocks.
        let scan = ScanStream(TreeScanner(root: root))
        defer { scan.stop() }
        let known = KnownBlocks(try await repository.knownBlocksForDeduplication())
        let askPerBlock = repository.store.existenceChecksAreCheap
        let blocks = repository.blockWriter()
        var previous: [ByteString: Entry] = [:]
        for entry in request.parent?.entries ?? [] where entry.type == .file { previous[entry.path] = entry }

        var entries: [Entry] = []
        var skipped = SkippedList()
        /// Indexes of files that vanished or were replaced between the scan and their reading.
        var vanished: Set<Int> = []
        var stats = Manifest.Stats()
        var toRead: UInt64 = 0
        var bytesHashed: UInt64 = 0
        // Totals grow while the scan runs alongside the reading.
        let counter = ProgressCounter(WorkProgress(phase: "scanning and backing up"), sink: progress)

        // Reading and chunking stay on this task, in scan order; hashing, compression and upload run on up to
        // `pipelineWidth` tasks. Each chunk gets a slot; its hash is filled in when its task completes.
        var slots: [(entry: Int, offset: UInt64, length: UInt32)] = []
        var results: [Int: UploadResult] = [:]
        let repository = self.repository
        let failure: ConvoyError? = await withTaskGroup(of: Result<UploadResult, ConvoyError>.self) { group in
            var inFlight = 0
            func absorb(_ result: Result<UploadResult, ConvoyError>?) -> ConvoyError? {
                switch result {
                case .success(let done):
                    results[done.slot] = done
                    return nil
                case .failure(let error): return error
                case nil: return nil
                }
            }
            var readAhead = ReadAhead(root: root)
            var reads = 0
            var complete = false
            for await event in scan.events {
                let first = entries.count
                switch event {
                case .entries(let batch):
                    entries.append(contentsOf: batch.entries)
                    for entry in batch.skipped { skipped.add(entry) }
                case .failed(let error):
                    group.cancelAll()
                    return error
                case .complete:
                    complete = true
                    counter.extend(bytes: 0, items: 0, phase: "backing up")
                    continue
                }
                var bytesFound: UInt64 = 0
                var filesFound = 0
                for index in first..<entries.count {
                    let entry = entries[index]
                    if entry.type == .directory { stats.directories += 1 }
                    guard entry.type == .file else { continue }
                    stats.files += 1
                    stats.bytes += entry.size
                    filesFound += 1
                    if !isUnchanged(entry, previous[entry.path]) {
                        toRead += entry.size
                        bytesFound += entry.size
                        readAhead.add(entry.path, size: entry.size)
                    }
                }
                counter.extend(bytes: bytesFound, items: filesFound, phase: "scanning and backing up")

                for index in first..<entries.count where entries[index].type == .file {
                    let entry = entries[index]
                    if let old = previous[entry.path], isUnchanged(entry, old) {
                        entries[index].chunks = old.chunks
                        counter.add(bytes: 0, items: 1)
                        continue
                    }
                    readAhead.reading(reads)
                    reads += 1
                    do throws(ConvoyError) {
                        let file: SourceFile
                        switch try SourceFile.open(entry.path, in: root, size: entry.size, inode: entry.inode) {
                        case .file(let opened): file = opened
                        case .gone(let reason):
                            skipped.add(SkippedEntry(path: entry.path, reason: reason))
                            vanished.insert(index)
                            counter.add(bytes: 0, items: 1)
                            continue
                        }
                        defer { file.close() }
                        let chunker = FastCDC.forFile(ofSize: entry.size)
                        let parent = ParentChunks(previous[entry.path], chunker: chunker)
                        try await forEachChunk(file, size: entry.size, chunker: chunker, parent: parent) {
                            offset, read throws(ConvoyError) in
                            try lease.throwIfRenewalFailed()
                            let slot = slots.count
                            let bytes: [UInt8]
                            switch read {
                            case .bytes(let read): bytes = read
                            case .unchanged(let hash, let length, let checksum):
                                slots.append((index, offset, length))
                                results[slot] = UploadResult(slot: slot, hash: hash, checksum: checksum,
                                                             storedBytes: 0, isNew: false)
                                counter.add(bytes: UInt64(length))
                                return
                            }
                            while inFlight >= Self.pipelineWidth {
                                inFlight -= 1
                                if let error = absorb(await group.next()) { throw error }
                            }
                            slots.append((index, offset, UInt32(bytes.count)))
                            bytesHashed += UInt64(bytes.count)
                            group.addTask {
                                await Self.store(bytes, slot: slot, in: repository, writer: blocks, known: known,
                                                 askPerBlock: askPerBlock, counter: counter)
                            }
                            inFlight += 1
                        }
                        try lease.throwIfRenewalFailed()
                    } catch {
                        group.cancelAll()
                        return error
                    }
                    counter.add(bytes: 0, items: 1)
                }
            }
            // The stream also ends when this task is cancelled; a manifest of part of the tree must not be written.
            guard complete else {
                group.cancelAll()
                return ConvoyError(.unavailable,
                                   "the backup of \(request.source) was cancelled before its scan finished")
            }
            for await result in group {
                if let error = absorb(result) { return error }
            }
            return nil
        }
        if let failure { throw failure }

        for (slot, place) in slots.enumerated() {
            guard let done = results[slot] else {
                throw ConvoyError(.internalFailure, "chunk \(slot) of the backup was lost")
            }
            entries[place.entry].chunks = (entries[place.entry].chunks ?? [])
                + [Chunk(hash: done.hash, offset: place.offset, length: place.length, checksum: done.checksum)]
            if done.isNew {
                stats.newBlocks += 1
                stats.newBytesStored += done.storedBytes
            }
        }
        // Files that changed but are empty (or all holes) have no chunks; give them an empty list so the next
        // backup can recognise them as unchanged.
        for index in entries.indices where entries[index].type == .file && entries[index].chunks == nil {
            entries[index].chunks = []
        }
        if !vanished.isEmpty {
            entries = Self.leavingOut(vanished, of: entries, stats: &stats, skipped: &skipped)
        }
        stats.bytesRead = toRead

        let manifest = Manifest(
            id: request.backupID, volume: request.volume, kind: .files,
            createdAt: request.createdAt ?? Date().formatted(.iso8601),
            snapshot: request.snapshot, parent: request.parent?.id, volumeSize: request.volumeSize,
            entries: entries, stats: stats)
        progress(WorkProgress(phase: "writing manifest", bytesDone: counter.current.bytesDone, bytesTotal: toRead,
                              itemsDone: stats.files, itemsTotal: stats.files))
        Failpoint.reach("file-backup-manifest-next")
        try await repository.putManifest(manifest, blocks: blocks)
        try await repository.putVolumeRecord(VolumeRecordInStore(
            name: request.volume, size: request.volumeSize, lastBackup: request.backupID,
            updatedAt: manifest.createdAt))
        return Outcome(manifest: manifest, skipped: skipped.listed, skippedCount: skipped.count,
                       bytesHashed: bytesHashed)
    }

    /// Hashes one chunk and stores it unless the store has it (or another task of this backup is storing it).
    private static func store(_ bytes: [UInt8], slot: Int, in repository: BackupRepository, writer: BlockWriter,
                              known: KnownBlocks, askPerBlock: Bool,
                              counter: ProgressCounter) async -> Result<UploadResult, ConvoyError> {
        let hash = bytes.withUnsafeBytes { repository.blockID(of: $0) }
        let checksum = BlockChecksum.of(bytes)
        counter.add(bytes: UInt64(bytes.count))
        guard known.claim(hash) else {
            return .success(UploadResult(slot: slot, hash: hash, checksum: checksum, storedBytes: 0, isNew: false))
        }
        if askPerBlock, (try? await repository.hasBlock(hash)) == true {
            return .success(UploadResult(slot: slot, hash: hash, checksum: checksum, storedBytes: 0, isNew: false))
        }
        let encoded = bytes.withUnsafeBytes { BlockCodec.encode($0) }
        do throws(ConvoyError) {
            try await writer.put(hash, encoded)
        } catch {
            known.release(hash)
            return .failure(error)
        }
        return .success(UploadResult(slot: slot, hash: hash, checksum: checksum, storedBytes: UInt64(encoded.count),
                                     isNew: true))
    }

    private func isUnchanged(_ entry: Entry, _ old: Entry?) -> Bool {
        guard let old, old.chunks != nil else { return false }
        return old.size == entry.size && old.mtimeSeconds == entry.mtimeSeconds
            && old.mtimeNanoseconds == entry.mtimeNanoseconds && old.inode == entry.inode
    }

    /// Splits one file's data regions into content-defined chunks, in order, keeping the parent's chunks where
    /// they are unchanged. Holes are skipped.
    private func forEachChunk(_ file: SourceFile, size: UInt64, chunker: FastCDC, parent: ParentChunks?,
                              _ body: (UInt64, ChunkRead) async throws(ConvoyError) -> Void) async throws(ConvoyError) {
        var parent = parent
        if file.direct {
            try await forEachChunkReadingAhead(file, size: size, chunker: chunker, parent: &parent, body)
            return
        }
        // Small files get a small buffer: allocating (and the kernel zeroing) 8 MiB per file dominated trees of
        // small files.
        var source = file
        let capacity = Int(min(UInt64(chunker.maximum * 2), max(size, 1)))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        guard let base = buffer.baseAddress else { return }
        for (regionStart, regionLength) in PosixFile.dataRegions(file.fd, size: size) {
            // buffer[start..<filled] holds unchunked bytes; it is compacted only when less than `maximum` remain
            // and more can be read, so most chunks cost no copy inside the buffer. Parent chunks the buffer holds
            // whole are kept before that, so less is moved.
            var start = 0
            var filled = 0
            var bufferOffset = regionStart  // file offset of buffer[start]
            var readOffset = regionStart
            let regionEnd = regionStart + regionLength
            while true {
                let available = UnsafeRawBufferPointer(rebasing: buffer[start..<filled])
                if !available.isEmpty,
                   let kept = parent?.unchanged(at: bufferOffset, available, atDataEnd: readOffset >= regionEnd) {
                    try await body(bufferOffset, kept.read)
                    start += kept.length
                    bufferOffset += UInt64(kept.length)
                    continue
                }
                if filled - start < chunker.maximum && readOffset < regionEnd {
                    if start > 0 {
                        _ = memmove(base, base + start, filled - start)
                        filled -= start
                        start = 0
                    }
                    let want = Int(min(UInt64(capacity - filled), regionEnd - readOffset))
                    let got = try source.read(into: base + filled, count: want, at: readOffset)
                    filled += got
                    readOffset += UInt64(got)
                    if got < want { readOffset = regionEnd }  // the file shrank while being read
                    continue
                }
                if available.isEmpty { break }
                let length = chunker.cut(available)
                try await body(bufferOffset, .bytes(Array(UnsafeRawBufferPointer(rebasing: available[0..<length]))))
                start += length
                bufferOffset += UInt64(length)
            }
        }
    }
}
