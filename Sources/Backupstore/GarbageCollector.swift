import ConvoyCore

/// Mark-and-sweep over a store's blocks: every block no manifest references is deleted. Runs only under a `gc`
/// lease with no other live lease; otherwise it defers (the unreferenced blocks wait for the next collection).
public struct GarbageCollector: Sendable {
    public struct Result: Sendable, Equatable {
        public var deferredBecause: String?
        public var blocksDeleted: Int
        public var blocksKept: Int
        public var abandonedWritesRemoved: Int = 0
    }

    public let repository: BackupRepository

    public init(repository: BackupRepository) {
        self.repository = repository
    }

    public func collect() async throws(ConvoyError) -> Result {
        let lease = try await StoreLease.write(.gc, in: repository)
        do {
            if let other = try await lease.others().first {
                await lease.release()
                return Result(deferredBecause: "\(other.kind.rawValue) \(other.id) (on \(other.host)) holds the store",
                              blocksDeleted: 0, blocksKept: 0)
            }
            var referenced = Set<String>()
            for (volume, id) in try await repository.backups() {
                referenced.formUnion(try await repository.manifest(volume: volume, backup: id).blockHashes)
            }
            let all = try await repository.blockHashes()
            let garbage = all.subtracting(referenced).sorted()
            for batch in stride(from: 0, to: garbage.count, by: 1000) {
                try await repository.deleteBlocks(Array(garbage[batch..<min(batch + 1000, garbage.count)]))
            }
            let abandoned = try await repository.store.removeAbandonedWrites(olderThan: StoreLease.timeToLive)
            await lease.release()
            return Result(deferredBecause: nil, blocksDeleted: garbage.count, blocksKept: all.count - garbage.count,
                          abandonedWritesRemoved: abandoned)
        } catch {
            await lease.release()
            throw error
        }
    }
}
