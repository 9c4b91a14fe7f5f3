import ConvoyCore

/// Mark-and-sweep over a store's blocks: every block no manifest references is deleted. Runs only under a `gc`
/// lease with no other live lease; otherwise it defers (the unreferenced blocks wait for the next collection).
///
/// Packs: one whose blocks are all unreferenced is deleted; one holding some is rewritten with only its live
/// blocks (a new pack made durable first, then the old one deleted). A pack without an index, or an index without
/// its pack, is what a crash between two writes or deletes leaves, and is removed. A pack whose index cannot be
/// read is kept: its blocks may be referenced.
public struct GarbageCollector: Sendable {
    public struct Result: Sendable, Equatable {
        public var deferredBecause: String?
        public var blocksDeleted: Int
        public var blocksKept: Int
        public var abandonedWritesRemoved: Int = 0
        public var packsRewritten: Int = 0
        public var packsDeleted: Int = 0
        /// Packs kept because their index is damaged, with the reason.
        public var packsWithDamagedIndex: [String] = []
    }

    public let repository: BackupRepository

    public init(repository: BackupRepository) {
        self.repository = repository
    }

    public func collect() async throws(ConvoyError) -> Result {
        try await StoreLease.holding(.gc, in: repository) { lease throws(ConvoyError) in
            if let other = try await lease.others().first {
                return Result(deferredBecause: "\(other.kind.rawValue) \(other.id) (on \(other.host)) holds the store",
                              blocksDeleted: 0, blocksKept: 0)
            }
            var referenced = Set<String>()
            for (volume, id) in try await repository.backups() {
                referenced.formUnion(try await repository.manifest(volume: volume, backup: id).blockHashes)
            }
            // One listing of each kind: what is left afterwards is what was there and is referenced (kept
            // packs hold only live blocks, rewritten ones their live blocks, deleted ones none).
            var loose = Set<String>()
            for object in try await repository.store.list(prefix: BackupRepository.blocksPrefix) {
                if let name = object.key.split(separator: "/").last { loose.insert(String(name)) }
            }
            let contents = try await repository.packs.current(from: repository.store)
            var result = Result(deferredBecause: nil, blocksDeleted: 0, blocksKept: 0)
            // A stop part way (a backup arrived, the lease was lost) defers the rest to the next collection.
            if let reason = try await collectPacks(contents, referenced: referenced, lease: lease, into: &result) {
                result.deferredBecause = reason
                return result
            }
            let garbage = loose.subtracting(referenced).sorted()
            for batch in stride(from: 0, to: garbage.count, by: 1000) {
                if let reason = try await lease.reasonToStop() {
                    result.deferredBecause = reason
                    result.blocksDeleted = batch
                    return result
                }
                try await repository.deleteBlocks(Array(garbage[batch..<min(batch + 1000, garbage.count)]))
                Failpoint.reach("gc-blocks-deleted")
            }
            if let reason = try await lease.reasonToStop() {
                result.deferredBecause = reason
                result.blocksDeleted = garbage.count
                return result
            }
            result.abandonedWritesRemoved =
                try await repository.store.removeAbandonedWrites(under: BackupRepository.root,
                                                                    olderThan: StoreLease.timeToLive)
            let before = contents.packs.values.reduce(into: loose) { all, entries in
                all.formUnion(entries.map(\.hash))
            }
            result.blocksDeleted = before.subtracting(referenced).count
            result.blocksKept = before.count - result.blocksDeleted
            return result
        }
    }

    /// Rewrites packs holding dead blocks and deletes those with none; returns why it stopped early, if it did.
    private func collectPacks(_ contents: PackDirectory.Contents, referenced: Set<String>, lease: StoreLease,
                              into result: inout Result) async throws(ConvoyError) -> String? {
        result.packsWithDamagedIndex = contents.damagedIndexes.map { "\($0.key): \($0.value)" }.sorted()
        var dead: [String] = contents.packsWithoutIndex
        if let reason = try await lease.reasonToStop() { return reason }
        try await repository.store.delete(contents.indexesWithoutPack.map(BackupRepository.packIndexKey))
        let rewriter = repository.blockWriter()
        var rewritten: [String] = []
        for (id, entries) in contents.packs.sorted(by: { $0.key < $1.key }) {
            let live = entries.filter { referenced.contains($0.hash) }
            if live.count == entries.count { continue }
            if live.isEmpty {
                dead.append(id)
                continue
            }
            let pack = try await repository.store.get(BackupRepository.packKey(id))
            for entry in live {
                guard entry.offset + entry.length <= pack.count else {
                    throw ConvoyError(.driverFailure,
                                      "pack \(id) in \(repository.store.location) is shorter than its index says; "
                                      + "not collecting it (run `convoy backup verify` on the backups that use it)")
                }
                try await rewriter.put(entry.hash, Array(pack[entry.offset..<(entry.offset + entry.length)]))
            }
            rewritten.append(id)
            if let failure = lease.renewalFailure() { return failure }
        }
        // The live blocks are durable in their new packs before any old pack goes.
        try await repository.commit(rewriter)
        Failpoint.reach("gc-packs-rewritten")
        // The rewritten blocks are in new packs already: stopping here leaves them twice, never missing.
        if let reason = try await lease.reasonToStop() { return reason }
        try await repository.deletePacks(rewritten + dead)
        result.packsRewritten = rewritten.count
        result.packsDeleted = dead.count
        return nil
    }
}
