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

    public func copy(_ manifest: Manifest, as backupID: String,
                     progress: @escaping ProgressSink = { _ in }) async throws(ConvoyError) -> Manifest {
        try await destination.prepare()
        return try await StoreLease.holding(.backup, in: destination) { lease throws(ConvoyError) in
            try await lease.waitForCollectors()
            try await destination.packs.refresh(from: destination.store)
            var sourceChecksums: [String: BlockChecksum] = [:]
            for entry in manifest.entries {
                for chunk in entry.chunks ?? [] { sourceChecksums[chunk.hash] = chunk.checksum }
            }
            // Between stores that name blocks differently (one is encrypted), the manifest is renamed first.
            let renamed = try await BlockIDTranslation.map(Set(sourceChecksums.keys), checksums: sourceChecksums,
                                                           from: source, to: destination)
            var copied = manifest
            var sourceID: [String: String] = [:]
            if let renamed {
                for index in copied.entries.indices {
                    guard var chunks = copied.entries[index].chunks else { continue }
                    for chunkIndex in chunks.indices {
                        let original = chunks[chunkIndex].hash
                        let id = renamed[original] ?? original
                        chunks[chunkIndex].hash = id
                        sourceID[id] = original
                    }
                    copied.entries[index].chunks = chunks
                }
            }
            var sizes: [String: UInt64] = [:]
            var checksums: [String: BlockChecksum] = [:]
            // In manifest order, so that packs hold the blocks of files next to each other: a restore reads a
            // pack for a run of files (hash order scattered every pack across the whole restore).
            var order: [String] = []
            for entry in copied.entries {
                for chunk in entry.chunks ?? [] where sizes[chunk.hash] == nil {
                    sizes[chunk.hash] = UInt64(chunk.length)
                    order.append(chunk.hash)
                    checksums[chunk.hash] = chunk.checksum
                }
            }
            // What the volume's last backup here holds is present; only the rest is looked up, one by one when
            // that is cheap (a stat) or few, else by listing the store once.
            let lastBackup = await destination.blocksOfLastBackup(manifest.volume)
            let candidates = order.filter { !lastBackup.contains($0) }
            let askPerBlock = destination.store.existenceChecksAreCheap || candidates.count <= 64
            let listed = askPerBlock ? [] : try await destination.blockHashes()
            let unlisted = candidates.filter { !listed.contains($0) }
            let missing = askPerBlock ? try await destination.missingBlocks(unlisted) : unlisted
            let counter = ProgressCounter(WorkProgress(phase: "uploading",
                                                       bytesTotal: missing.reduce(0) { $0 + (sizes[$1] ?? 0) },
                                                       itemsTotal: missing.count), sink: progress)
            copied.id = backupID
            copied.stats.newBlocks = missing.count
            copied.stats.newBytesStored = 0
            let (source, destination, blockSizes, blockChecksums) = (self.source, self.destination, sizes, checksums)
            let originals = sourceID
            let blocks = destination.blockWriter()
            // Blocks travel on up to `width` tasks at once: each is read, verified and written independently.
            // Reads bypass the page cache, so only many in flight keep the disk busy: a 2 GB copy took 5.0 s
            // with 6, 4.2 s with 12, 3.4–3.6 s with 24 (more gained nothing); memory is `width` blocks.
            let width = 24
            let outcome: Result<UInt64, ConvoyError> = await withTaskGroup(
                of: Result<UInt64, ConvoyError>.self
            ) { group in
                var stored: UInt64 = 0
                var next = 0
                func launch(_ hash: String) {
                    let original = originals[hash] ?? hash
                    group.addTask {
                        do throws(ConvoyError) {
                            // Read once around the page cache, verified (a raw block in place), written as read.
                            // The manifest's XXH3-128 checks it as well as a SHA-256 would against damage, at a
                            // sixth of the CPU (see BlockChecksum); manifests of format 1 have none: SHA-256.
                            let encoded = try await source.encodedBlockReadOnce(original)
                            _ = try BlockCodec.decodeInPlace(encoded, expectedHash: original,
                                                             checksum: blockChecksums[hash], cipher: source.cipher)
                            try await blocks.put(hash, encoded)
                            counter.add(bytes: blockSizes[hash] ?? 0, items: 1)
                            return .success(UInt64(encoded.count))
                        } catch {
                            return .failure(error)
                        }
                    }
                }
                while next < min(width, missing.count) {
                    launch(missing[next])
                    next += 1
                }
                for await result in group {
                    switch result {
                    case .success(let bytes): stored += bytes
                    case .failure(let error):
                        group.cancelAll()
                        return .failure(error)
                    }
                    do throws(ConvoyError) { try lease.throwIfRenewalFailed() } catch { return .failure(error) }
                    if next < missing.count {
                        launch(missing[next])
                        next += 1
                    }
                }
                return .success(stored)
            }
            copied.stats.newBytesStored = try outcome.get()
            try lease.throwIfRenewalFailed()
            Failpoint.reach("backup-blocks-copied")
            try await destination.putManifest(copied, blocks: blocks)
            Failpoint.reach("backup-manifest-written")
            try await destination.putVolumeRecord(VolumeRecordInStore(
                name: copied.volume, size: copied.volumeSize, lastBackup: backupID, updatedAt: copied.createdAt))
            return copied
        }
    }
}
