@testable import Backupstore
import ConvoyCore
import Synchronization

/// A real store seen through a counter of the reads made of it, by kind: what a restore costs in requests is
/// what a user of a remote store pays for.
final class ReadCountingStore: ObjectStore {
    let base: any ObjectStore
    private let counts = Mutex<[String: Int]>([:])

    init(base: any ObjectStore) {
        self.base = base
    }

    /// Reads so far: "get", "range" (whole objects, ranges), by the key's kind ("packs", "blocks", …) after it.
    func count(_ kind: String) -> Int { counts.withLock { $0[kind, default: 0] } }

    private func counted(_ kind: String, _ key: String) {
        let area = key.split(separator: "/").dropFirst().first.map(String.init) ?? ""
        counts.withLock {
            $0[kind, default: 0] += 1
            $0[kind + " " + area, default: 0] += 1
        }
    }

    var location: String { base.location }
    var existenceChecksAreCheap: Bool { base.existenceChecksAreCheap }
    var requestConcurrency: Int { base.requestConcurrency }
    var packsLargeBlocks: Bool { base.packsLargeBlocks }

    func get(_ key: String) async throws(ConvoyError) -> [UInt8] {
        counted("get", key)
        return try await base.get(key)
    }

    func getOnce(_ key: String) async throws(ConvoyError) -> ObjectBytes {
        counted("get", key)
        return try await base.getOnce(key)
    }

    func getRange(_ key: String, offset: Int, length: Int) async throws(ConvoyError) -> [UInt8] {
        counted("range", key)
        return try await base.getRange(key, offset: offset, length: length)
    }

    func getOnceRange(_ key: String, offset: Int, length: Int) async throws(ConvoyError) -> ObjectBytes {
        counted("range", key)
        return try await base.getOnceRange(key, offset: offset, length: length)
    }

    func put(_ key: String, _ bytes: [UInt8]) async throws(ConvoyError) { try await base.put(key, bytes) }
    func exists(_ key: String) async throws(ConvoyError) -> Bool { try await base.exists(key) }
    func delete(_ keys: [String]) async throws(ConvoyError) { try await base.delete(keys) }
    func list(prefix: String) async throws(ConvoyError) -> [ObjectInfo] { try await base.list(prefix: prefix) }
    func removeAbandonedWrites(under prefix: String, olderThan age: Double) async throws(ConvoyError) -> Int {
        try await base.removeAbandonedWrites(under: prefix, olderThan: age)
    }
    func putDeferred(_ key: String, _ bytes: [UInt8]) async throws(ConvoyError) {
        try await base.putDeferred(key, bytes)
    }
    func commitDeferred() async throws(ConvoyError) { try await base.commitDeferred() }
    func absent(_ keys: [String]) async throws(ConvoyError) -> Set<String> { try await base.absent(keys) }
    func putDeferred(_ key: String, _ object: ObjectBytes) async throws(ConvoyError) {
        try await base.putDeferred(key, object)
    }
    func putDeferred(_ key: String, aligned buffer: AlignedBuffer) async throws(ConvoyError) {
        try await base.putDeferred(key, aligned: buffer)
    }
}
