import ConvoyCore

/// Mark-and-sweep over a store's blocks: every block no manifest references is deleted. Runs only under a `gc`
/// lease with no other live lease; otherwise it defers (the unreferenced blocks wait for the next collection).
///
/// Packs: one whose blocks are all unreferenced is deleted; one where more than `thresholds.repackDeadFraction`
/// of the bytes are dead is rewritten with only its live blocks (a new pack made durable first, then the old one
/// deleted); below that its dead blocks stay where they are (readable, counted in `deadBytesKept`, and reused
/// by a backup that meets the same data again) until more of the pack dies: rewriting 8 MiB to free one block is
/// what made a daily forget read and write much of a store. Packs with less than `mergeBelowBytes` live are
/// merged into full ones when there are two or more (incremental backups leave small packs; each costs a listing
/// entry and a request). A pack without an index, or an index without its pack, is what a crash between two
/// writes or deletes leaves, and is removed. A pack whose index cannot be read is kept: its blocks may be
/// referenced.
public struct GarbageCollector: Sendable {
    /// When a pack is worth rewriting.
    public struct Thresholds: Sendable, Equatable {
        /// Rewrite a pack when more than this fraction of its bytes is dead (0: any dead block).
        public var repackDeadFraction: Double
        /// Merge packs holding less than this many live bytes, when there are two or more (0: never).
        public var mergeBelowBytes: Int

        public init(repackDeadFraction: Double, mergeBelowBytes: Int) {
            (self.repackDeadFraction, self.mergeBelowBytes) = (repackDeadFraction, mergeBelowBytes)
        }

        /// Every dead block freed, no merging: what a collection did before thresholds.
        public static let exact = Thresholds(repackDeadFraction: 0, mergeBelowBytes: 0)
        /// A fifth of a pack dead, or less than a quarter of a pack live.
        public static let standard = Thresholds(repackDeadFraction: 0.2, mergeBelowBytes: BlockWriter.packSize / 4)
    }

    public struct Result: Sendable, Equatable {
        public var deferredBecause: String?
        public var blocksDeleted: Int
        public var blocksKept: Int
        public var abandonedWritesRemoved: Int = 0
        public var packsRewritten: Int = 0
        public var packsDeleted: Int = 0
        /// Packs kept because their index is damaged, with the reason.
        public var packsWithDamagedIndex: [String] = []
        /// Packs of little live data merged into full ones (counted in `packsRewritten` too).
        public var packsMerged: Int = 0
        /// Dead blocks left in packs below the threshold, and their bytes.
        public var deadBlocksKept: Int = 0
        public var deadBytesKept: Int = 0
    }

    public let repository: BackupRepository
    public let thresholds: Thresholds

    public init(repository: BackupRepository, thresholds: Thresholds = .standard) {
        self.repository = repository
        self.thresholds = thresholds
    }

    public func collect() async throws(ConvoyError) -> Result {
        try repository.refuseIfAppendOnly()
        return try await StoreLease.holding(.gc, in: repository) { lease throws(ConvoyError) in
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
            // A block both loose and in a kept pack counts once in `before`, twice in what was kept.
            result.blocksDeleted = max(0, before.subtracting(referenced).count - result.deadBlocksKept)
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
        let plan = plan(contents.packs, referenced: referenced)
        dead += plan.dead
        result.deadBlocksKept = plan.deadBlocksKept
        result.deadBytesKept = plan.deadBytesKept
        for id in plan.rewrite {
            let entries = contents.packs[id] ?? []
            let live = entries.filter { referenced.contains($0.hash) }
            let pack = try await repository.store.get(BackupRepository.packKey(id))
            for entry in live {
                guard entry.offset + entry.length <= pack.count else {
                    throw ConvoyError(.driverFailure,
                                      "pack \(id) in \(repository.store.location) is shorter than its index says; "
                                      + "not collecting it (run `convoy backup verify` on the backups that use it)")
                }
                // Moved as stored: a sealed block stays sealed under its id, not sealed twice.
                try await rewriter.putStored(entry.hash, Array(pack[entry.offset..<(entry.offset + entry.length)]))
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
        result.packsMerged = plan.merged
        result.packsDeleted = dead.count
        return nil
    }

    struct Plan: Equatable {
        var dead: [String] = []
        /// In id order.
        var rewrite: [String] = []
        var merged = 0
        var deadBlocksKept = 0
        var deadBytesKept = 0
    }

    /// Which packs go, which are rewritten (too much dead, or merged for too little live), which stay as they are.
    func plan(_ packs: [String: [PackEntry]], referenced: Set<String>) -> Plan {
        var plan = Plan()
        var small: [String] = []
        var rewrite = Set<String>()
        for (id, entries) in packs.sorted(by: { $0.key < $1.key }) {
            let live = entries.filter { referenced.contains($0.hash) }
            if live.isEmpty {
                plan.dead.append(id)
                continue
            }
            let total = entries.reduce(0) { $0 + $1.length }
            let liveBytes = live.reduce(0) { $0 + $1.length }
            let deadBytes = total - liveBytes
            if deadBytes > 0 && Double(deadBytes) > thresholds.repackDeadFraction * Double(total) {
                rewrite.insert(id)
            } else if liveBytes < thresholds.mergeBelowBytes {
                small.append(id)
            } else {
                plan.deadBlocksKept += entries.count - live.count
                plan.deadBytesKept += deadBytes
            }
        }
        if small.count >= 2 {
            rewrite.formUnion(small)
            plan.merged = small.count
        } else if let alone = small.first {
            // One small pack has nothing to merge with: it stays, with what little is dead in it.
            let dead = (packs[alone] ?? []).filter { !referenced.contains($0.hash) }
            plan.deadBlocksKept += dead.count
            plan.deadBytesKept += dead.reduce(0) { $0 + $1.length }
        }
        plan.rewrite = rewrite.sorted()
        return plan
    }
}
