import ConvoyCore
import Synchronization

/// Which blocks of a store are in packs, and where: read from the index objects beside the packs. Loaded at first
/// use and loaded again when a block is not where the loaded indexes say (a collection repacked it, or another
/// writer added a pack since); a load fetches only the indexes it has not read, since packs and their indexes are
/// never changed once written.
final class PackDirectory: Sendable {
    /// What one listing of the packs found.
    struct Contents: Sendable {
        /// Packs with a readable index, and their entries.
        var packs: [String: [PackEntry]] = [:]
        /// Packs whose index object is missing (a writer died between the two, or a collection between deletes).
        var packsWithoutIndex: [String] = []
        /// Index objects whose pack is missing; their entries are not used.
        var indexesWithoutPack: [String] = []
        /// Packs whose index could not be read, with the reason. Their blocks cannot be located.
        var damagedIndexes: [String: String] = [:]
    }

    private struct State {
        var loaded = false
        /// Counts loads: a reader that missed a block loads again only if nobody has since it looked.
        var generation = 0
        var contents = Contents()
        var blocks: [String: PackedBlock] = [:]
    }

    private let state = Mutex(State())
    /// False for stores that never hold packs (a backup mount's disk cache): no listing is ever made.
    let enabled: Bool

    init(enabled: Bool) {
        self.enabled = enabled
    }

    var generation: Int { state.withLock { $0.generation } }

    /// Where block `hash` is packed, or nil when it is not in any pack this directory knows.
    func locate(_ hash: String, in store: any ObjectStore) async throws(ConvoyError) -> PackedBlock? {
        guard enabled else { return nil }
        if !state.withLock({ $0.loaded }) { try await load(from: store) }
        return state.withLock { $0.blocks[hash] }
    }

    /// Loads again unless someone has since generation `seen`. Returns whether anything may have changed.
    @discardableResult
    func reload(after seen: Int, from store: any ObjectStore) async throws(ConvoyError) -> Bool {
        guard enabled else { return false }
        if state.withLock({ $0.generation != seen && $0.loaded }) { return true }
        try await load(from: store)
        return true
    }

    /// The packs as a fresh listing shows them.
    func current(from store: any ObjectStore) async throws(ConvoyError) -> Contents {
        guard enabled else { return Contents() }
        try await load(from: store)
        return state.withLock { $0.contents }
    }

    /// Loads again if loaded before: a writer calls this once it holds its lease, since a collection may have
    /// rewritten packs since (and then a block it believed stored would not be).
    func refresh(from store: any ObjectStore) async throws(ConvoyError) {
        guard enabled, state.withLock({ $0.loaded }) else { return }
        try await load(from: store)
    }

    /// Every packed block's hash (as last loaded; loads first if never loaded).
    func hashes(in store: any ObjectStore) async throws(ConvoyError) -> Set<String> {
        guard enabled else { return [] }
        if !state.withLock({ $0.loaded }) { try await load(from: store) }
        return state.withLock { Set($0.blocks.keys) }
    }

    /// Why a block may be unreachable: the packs whose index is damaged, for a "missing block" message.
    var damagedIndexes: [String: String] { state.withLock { $0.contents.damagedIndexes } }

    /// Records packs this process wrote and made durable.
    func add(_ packs: [(id: String, entries: [PackEntry])]) {
        guard enabled, !packs.isEmpty else { return }
        state.withLock { state in
            for (id, entries) in packs {
                state.contents.packs[id] = entries
                for entry in entries {
                    state.blocks[entry.hash] = PackedBlock(pack: id, offset: entry.offset, length: entry.length)
                }
            }
        }
    }

    private func load(from store: any ObjectStore) async throws(ConvoyError) {
        var packIDs = Set<String>()
        var indexIDs: [String] = []
        for object in try await store.list(prefix: BackupRepository.packsPrefix) {
            let name = object.key.split(separator: "/").last.map(String.init) ?? ""
            if name.hasSuffix(BackupRepository.packIndexSuffix) {
                indexIDs.append(String(name.dropLast(BackupRepository.packIndexSuffix.count)))
            } else {
                packIDs.insert(name)
            }
        }
        let known = state.withLock { $0.contents.packs }
        var contents = Contents()
        contents.indexesWithoutPack = indexIDs.filter { !packIDs.contains($0) }.sorted()
        contents.packsWithoutIndex = packIDs.subtracting(indexIDs).sorted()
        let usable = indexIDs.filter(packIDs.contains)
        for id in usable { if let entries = known[id] { contents.packs[id] = entries } }
        let toFetch = usable.filter { known[$0] == nil }
        // Index objects are small: a few fetched at once hide a remote store's latency.
        let fetched: [(String, Result<[PackEntry], ConvoyError>)] = await withTaskGroup(of: (String, Result<[PackEntry], ConvoyError>).self) { group in
            var results: [(String, Result<[PackEntry], ConvoyError>)] = []
            var next = 0
            func launch(_ id: String) {
                group.addTask {
                    do throws(ConvoyError) {
                        let bytes = try await store.get(BackupRepository.packIndexKey(id))
                        return (id, .success(try PackIndexCodec.decode(bytes, pack: id)))
                    } catch {
                        return (id, .failure(error))
                    }
                }
            }
            while next < min(8, toFetch.count) { launch(toFetch[next]); next += 1 }
            for await result in group {
                results.append(result)
                if next < toFetch.count { launch(toFetch[next]); next += 1 }
            }
            return results
        }
        for (id, result) in fetched {
            switch result {
            case .success(let entries): contents.packs[id] = entries
            case .failure(let error) where error.kind == .notFound:
                break  // deleted since the listing (a collection removes the index, then the pack)
            case .failure(let error) where error.kind == .driverFailure:
                contents.damagedIndexes[id] = error.message
            case .failure(let error):
                throw error  // the store could not be read: nothing can be said about the packs
            }
        }
        var blocks: [String: PackedBlock] = [:]
        blocks.reserveCapacity(contents.packs.values.reduce(0) { $0 + $1.count })
        // In a stable order, so a block stored in two packs is always looked for in the same one.
        for id in contents.packs.keys.sorted() {
            for entry in contents.packs[id] ?? [] where blocks[entry.hash] == nil {
                blocks[entry.hash] = PackedBlock(pack: id, offset: entry.offset, length: entry.length)
            }
        }
        state.withLock { state in
            state.loaded = true
            state.generation += 1
            state.contents = contents
            state.blocks = blocks
        }
    }
}
