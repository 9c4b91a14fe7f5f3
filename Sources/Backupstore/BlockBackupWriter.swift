import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Backs up a block device (a thin snapshot) as fixed-size blocks aligned with the thin pool's blocks. Only the
/// blocks the caller names are read; the others come from the base backup's chunk map (blocks already in the store),
/// so an incremental backup reads and uploads just what changed. Blocks are content-addressed like file chunks, so
/// identical blocks (zeros, copies) are stored once.
public struct BlockBackupWriter: Sendable {
    public let repository: BackupRepository

    public init(repository: BackupRepository) {
        self.repository = repository
    }

    public struct Request: Sendable {
        public var device: String
        public var volume: String
        public var backupID: String
        public var snapshot: String
        public var volumeSize: UInt64
        public var blockSize: UInt64
        /// Block indexes to read from the device, ascending.
        public var read: [UInt64]
        /// Chunks kept from the base backup (its blocks that neither changed nor were unmapped).
        public var kept: [Chunk]
        public var parent: String?
        /// When the data is from (the snapshot's time, ISO 8601); now when nil.
        public var createdAt: String?

        public init(device: String, volume: String, backupID: String, snapshot: String, volumeSize: UInt64,
                    blockSize: UInt64, read: [UInt64], kept: [Chunk], parent: String?, createdAt: String? = nil) {
            self.createdAt = createdAt
            self.device = device
            self.volume = volume
            self.backupID = backupID
            self.snapshot = snapshot
            self.volumeSize = volumeSize
            self.blockSize = blockSize
            self.read = read
            self.kept = kept
            self.parent = parent
        }
    }

    /// Blocks read and hashed at once.
    static let width = 4

    public func backup(_ request: Request,
                       progress: @escaping ProgressSink = { _ in }) async throws(ConvoyError) -> Manifest {
        return try await StoreLease.whileWriting(backup: request.backupID, of: request.volume,
                                                 in: repository) { lease throws(ConvoyError) in
            try await run(request, lease: lease, progress: progress)
        }
    }

    private func run(_ request: Request, lease: StoreLease,
                     progress: @escaping ProgressSink) async throws(ConvoyError) -> Manifest {
        let fd = open(request.device, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw PosixFile.failure("open", request.device) }
        defer { close(fd) }
        let total = UInt64(request.read.count) * request.blockSize
        let counter = ProgressCounter(WorkProgress(phase: "backing up blocks", bytesTotal: total,
                                                   itemsTotal: request.read.count),
                                      sink: progress)
        let repository = self.repository
        let reads = request.read.map { index in
            (index: index, offset: index * request.blockSize,
             length: Int(min(request.blockSize,
                             request.volumeSize - min(request.volumeSize, index * request.blockSize))))
        }.filter { $0.length > 0 }
        let (device, known) = (request.device, KnownBlocks([]))
        let blocks = repository.blockWriter()
        let results: Result<[(Chunk, UInt64)], ConvoyError> = await withTaskGroup(
            of: Result<(Chunk, UInt64), ConvoyError>.self
        ) { group in
            var next = 0
            var done: [(Chunk, UInt64)] = []
            func launch() {
                let block = reads[next]
                next += 1
                group.addTask {
                    do throws(ConvoyError) {
                        var bytes = [UInt8](repeating: 0, count: block.length)
                        let reading: Result<Int, ConvoyError> = bytes.withUnsafeMutableBytes { buffer in
                            do throws(ConvoyError) {
                                return .success(try PosixFile.read(fd, into: buffer, at: block.offset, path: device))
                            } catch {
                                return .failure(error)
                            }
                        }
                        let got = try reading.get()
                        guard got == block.length else {
                            throw ConvoyError(.driverFailure, "short read of \(device) at \(block.offset): "
                                + "\(got) of \(block.length) bytes")
                        }
                        let hash = bytes.withUnsafeBytes { repository.blockID(of: $0) }
                        let checksum = BlockChecksum.of(bytes)
                        var stored: UInt64 = 0
                        if known.claim(hash), !(try await repository.hasBlock(hash)) {
                            let encoded = bytes.withUnsafeBytes { BlockCodec.encode($0) }
                            try await blocks.put(hash, encoded)
                            stored = UInt64(encoded.count)
                        }
                        counter.add(bytes: UInt64(block.length), items: 1)
                        return .success((Chunk(hash: hash, offset: block.offset, length: UInt32(block.length),
                                               checksum: checksum), stored))
                    } catch {
                        return .failure(error)
                    }
                }
            }
            while next < min(Self.width, reads.count) { launch() }
            for await result in group {
                switch result {
                case .success(let value): done.append(value)
                case .failure(let error):
                    group.cancelAll()
                    return .failure(error)
                }
                do throws(ConvoyError) { try lease.throwIfRenewalFailed() } catch { return .failure(error) }
                if next < reads.count { launch() }
            }
            return .success(done)
        }
        let read = try results.get()
        let chunks = (request.kept + read.map(\.0)).sorted { $0.offset < $1.offset }
        var image = Entry(path: Manifest.imagePath, type: .file, mode: 0o600, uid: 0, gid: 0,
                          mtimeSeconds: Int64(Date().timeIntervalSince1970), mtimeNanoseconds: 0,
                          size: request.volumeSize)
        image.chunks = chunks
        var root = Entry(path: "", type: .directory, mode: 0o755, uid: 0, gid: 0,
                         mtimeSeconds: image.mtimeSeconds, mtimeNanoseconds: 0, size: 0)
        root.chunks = nil
        var stats = Manifest.Stats()
        stats.files = 1
        stats.directories = 1
        stats.bytes = chunks.reduce(0) { $0 + UInt64($1.length) }
        stats.bytesRead = read.reduce(0) { $0 + UInt64($1.0.length) }
        stats.newBlocks = read.filter { $0.1 > 0 }.count
        stats.newBytesStored = read.reduce(0) { $0 + $1.1 }
        let manifest = Manifest(id: request.backupID, volume: request.volume, kind: .blocks,
                                createdAt: request.createdAt ?? Date().formatted(.iso8601), snapshot: request.snapshot,
                                parent: request.parent, volumeSize: request.volumeSize, entries: [root, image],
                                stats: stats)
        try lease.throwIfRenewalFailed()
        try await repository.putManifest(manifest, blocks: blocks)
        try await repository.putVolumeRecord(VolumeRecordInStore(
            name: request.volume, size: request.volumeSize, lastBackup: request.backupID,
            updatedAt: manifest.createdAt))
        return manifest
    }
}

/// Writes a block backup's image onto a device (a new thin volume, already discarded so unmapped regions read as
/// zeros): every chunk fetched, verified, written at its offset; then the device is synced.
public struct BlockRestorer: Sendable {
    public let repository: BackupRepository

    public init(repository: BackupRepository) {
        self.repository = repository
    }

    public func restore(_ manifest: Manifest, onto device: String,
                        progress: @escaping ProgressSink = { _ in }) async throws(ConvoyError) {
        guard manifest.kind == .blocks,
              let image = manifest.entries.first(where: { $0.path == Manifest.imagePath }) else {
            throw ConvoyError(.invalidArgument, "backup \(manifest.id) is not a block backup")
        }
        // A crafted manifest must not make one block overwrite another, or write past the image.
        if let problem = ManifestRules.chunkProblem(image) {
            throw ConvoyError(.driverFailure, "backup \(manifest.id) is inconsistent: the manifest has \(problem)")
        }
        let chunks = image.chunks ?? []
        let fd = open(device, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw PosixFile.failure("open", device) }
        defer { close(fd) }
        let counter = ProgressCounter(WorkProgress(phase: "restoring blocks", bytesTotal: manifest.stats.bytes,
                                                   itemsTotal: chunks.count),
                                      sink: progress)
        let repository = self.repository
        let failure: ConvoyError? = await withTaskGroup(of: ConvoyError?.self) { group in
            var next = 0
            func launch() {
                let chunk = chunks[next]
                next += 1
                group.addTask {
                    do throws(ConvoyError) {
                        let data = try await repository.block(chunk.hash, checksum: chunk.checksum)
                        guard data.count == Int(chunk.length) else {
                            throw ConvoyError(.driverFailure, "block \(chunk.hash) has \(data.count) bytes, "
                                + "the manifest says \(chunk.length)")
                        }
                        try PosixFile.writeAll(fd, data, at: chunk.offset, path: device)
                        counter.add(bytes: UInt64(chunk.length), items: 1)
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            while next < min(BlockBackupWriter.width, chunks.count) { launch() }
            for await result in group {
                if let result {
                    group.cancelAll()
                    return result
                }
                if next < chunks.count { launch() }
            }
            return nil
        }
        if let failure { throw failure }
        guard fsync(fd) == 0 else { throw PosixFile.failure("sync", device) }
    }
}
