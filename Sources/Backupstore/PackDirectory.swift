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
        /// The first load, which callers arriving meanwhile wait for instead of listing the store themselves (a
        /// restore or a mount starts many reads at once).
        var firstLoad: Task<ConvoyError?, Never>?
        /// Counts loads: a reader that missed a block loads again only if nobody has since it looked.
        var generation = 0
        /// Loads started, and which one the contents come from: a load that lists the store before another must
        /// not replace what the other found, whichever ends first.
        var loadsStarted = 0
        var contentsFrom = 0
        var contents = Contents()
        var blocks: [String: PackedBlock] = [:]
    }

    private let state = Mutex(State())
    /// False for stores that never hold packs (a backup mount's disk cache): no listing is ever made.
    let enabled: Bool
    /// Copies of a remote store's indexes on this host, read before the store is asked.
    let cache: PackIndexCache?

    init(enabled: Bool, cache: PackIndexCache? = nil) {
        self.enabled = enabled
        self.cache = cache
    }

    var generation: Int { state.withLock { $0.generation } }

    /// Where block `hash` is packed, or nil when it is not in any pack this directory knows.
    func locate(_ hash: String, in store: any ObjectStore) async throws(ConvoyError) -> PackedBlock? {
        guard enabled else { return nil }
        try await ensureLoaded(from: store)
        return state.withLock { $0.blocks[hash] }
    }

    /// Where each of `hashes` is packed, for those in a pack this directory knows (one lock for all of them).
    func locate(_ hashes: some Sequence<String>, in store: any ObjectStore) async throws(ConvoyError)
        -> [String: PackedBlock] {
        guard enabled else { return [:] }
        try await ensureLoaded(from: store)
        return state.withLock { state in
            var found: [String: PackedBlock] = [:]
            for hash in hashes { if let place = state.blocks[hash] { found[hash] = place } }
            return found
        }
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
        try await ensureLoaded(from: store)
        return state.withLock { Set($0.blocks.keys) }
    }

    /// Why a block may be unreachable: the packs whose index is damaged, for a "missing block" message.
    var damagedIndexes: [String: String] { state.withLock { $0.contents.damagedIndexes } }

    /// Records packs this process wrote and made durable, and keeps copies of their indexes on the host when it
    /// does.
    func add(_ packs: [(id: String, entries: [PackEntry])]) async {
        guard enabled, !packs.isEmpty else { return }
        await cache?.keep(packs.map { ($0.id, PackIndexCodec.encode($0.entries)) })
        state.withLock { state in
            for (id, entries) in packs {
                state.contents.packs[id] = entries
                for entry in entries {
                    state.blocks[entry.hash] = PackedBlock(pack: id, offset: entry.offset, length: entry.length)
                }
            }
        }
    }

    private func ensureLoaded(from store: any ObjectStore) async throws(ConvoyError) {
        let first: Task<ConvoyError?, Never>? = state.withLock { state in
            if state.loaded { return nil }
            if let running = state.firstLoad { return running }
            let running = Task { () -> ConvoyError? in
                do throws(ConvoyError) { try await self.load(from: store) } catch { return error }
                return nil
            }
            state.firstLoad = running
            return running
        }
        guard let first else { return }
        if let error = await first.value {
            state.withLock { $0.firstLoad = nil }  // the next caller tries again
            throw error
        }
    }

    /// Pack ids are 32 lowercase hex digits; anything else under `packs/` is not convoy's and is left alone.
    static func isPackID(_ name: Substring) -> Bool {
        name.utf8.count == 32 && name.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// Lists the packs and reads the indexes not read before. Reloads never wait for another load: one that
    /// started before a pack was rewritten would not see the new pack.
    private func load(from store: any ObjectStore) async throws(ConvoyError) {
        let ticket = state.withLock { state in
            state.loadsStarted += 1
            return state.loadsStarted
        }
        var packIDs = Set<String>()
        var indexIDs: [String] = []
        for object in try await store.list(prefix: BackupRepository.packsPrefix) {
            let name = object.key.split(separator: "/").last ?? ""
            if name.hasSuffix(BackupRepository.packIndexSuffix) {
                let id = name.dropLast(BackupRepository.packIndexSuffix.count)
                if Self.isPackID(id) { indexIDs.append(String(id)) }
            } else if Self.isPackID(name) {
                packIDs.insert(String(name))
            }
        }
        let known = state.withLock { $0.contents.packs }
        var contents = Contents()
        contents.indexesWithoutPack = indexIDs.filter { !packIDs.contains($0) }.sorted()
        contents.packsWithoutIndex = packIDs.subtracting(indexIDs).sorted()
        let usable = indexIDs.filter(packIDs.contains)
        for id in usable { if let entries = known[id] { contents.packs[id] = entries } }
        let cache = self.cache
        let unknown = usable.filter { known[$0] == nil }
        let copies = await cache?.copies(of: unknown, keepingOnly: Set(usable)) ?? [:]
        for (id, entries) in copies { contents.packs[id] = entries }
        let toFetch = unknown.filter { copies[$0] == nil }
        // Index objects are small: a few fetched at once hide a remote store's latency.
        let fetched: [(String, Result<[PackEntry], ConvoyError>)] = await withTaskGroup(
            of: (String, Result<[PackEntry], ConvoyError>).self
        ) { group in
            var results: [(String, Result<[PackEntry], ConvoyError>)] = []
            var next = 0
            func launch(_ id: String) {
                group.addTask {
                    do throws(ConvoyError) {
                        let bytes = try await store.get(BackupRepository.packIndexKey(id))
                        let entries = try PackIndexCodec.decode(bytes, pack: id)
                        await cache?.keep([(id, bytes)])
                        return (id, .success(entries))
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
            guard ticket > state.contentsFrom else { return }
            state.contentsFrom = ticket
            state.contents = contents
            state.blocks = blocks
        }
    }
}
