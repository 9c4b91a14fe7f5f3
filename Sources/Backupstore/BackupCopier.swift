import ConvoyCore

/// Copies a backup from one store to another (a local snapshot to a backup destination): the blocks the
/// destination lacks, each verified on the way, then the manifest under a new id. Incremental by construction.
public struct BackupCopier: Sendable {
    public let source: BackupRepository
    public let destination: BackupRepository

    public init(source: BackupRepository, destination: BackupRepository) {
        self.source = source
        self.destination = destination
    }

    public func copy(_ manifest: Manifest, as backupID: String, progress: ProgressSink = { _ in }) async throws(ConvoyError) -> Manifest {
        try await destination.prepare()
        let lease = try await StoreLease.write(.backup, in: destination)
        do {
            try await lease.waitForCollectors()
            let present = try await destination.blockHashes()
            var sizes: [String: UInt64] = [:]
            for entry in manifest.entries { for chunk in entry.chunks ?? [] { sizes[chunk.hash] = UInt64(chunk.length) } }
            let missing = sizes.keys.filter { !present.contains($0) }.sorted()
            var state = WorkProgress(phase: "uploading", bytesTotal: missing.reduce(0) { $0 + (sizes[$1] ?? 0) },
                                     itemsTotal: missing.count)
            progress(state)
            var copied = manifest
            copied.id = backupID
            copied.stats.newBlocks = 0
            copied.stats.newBytesStored = 0
            for hash in missing {
                let encoded = try await source.encodedBlock(hash)
                _ = try BlockCodec.decode(encoded, expectedHash: hash)
                try await destination.putBlock(hash: hash, encoded: encoded)
                copied.stats.newBlocks += 1
                copied.stats.newBytesStored += UInt64(encoded.count)
                state.itemsDone += 1
                state.bytesDone += sizes[hash] ?? 0
                progress(state)
                try await lease.renewIfDue()
            }
            try await destination.putManifest(copied)
            try await destination.putVolumeRecord(VolumeRecordInStore(
                name: copied.volume, size: copied.volumeSize, lastBackup: backupID, updatedAt: copied.createdAt))
            await lease.release()
            return copied
        } catch {
            await lease.release()
            throw error
        }
    }
}
