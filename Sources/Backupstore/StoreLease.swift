import ConvoyCore
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Leases coordinate writers of one store (Longhorn-style lease files with an expiry). A backup holds a `backup`
/// lease while it uploads; garbage collection needs a `gc` lease and no other live lease. Each side writes its
/// lease before looking at the others', so whichever order they race in, GC never sweeps while a backup that may
/// reference a block is in flight.
public struct StoreLease: Sendable {
    public enum Kind: String, Codable, Sendable {
        case backup
        case gc
    }

    struct Record: Codable {
        var id: String
        var kind: Kind
        var host: String
        var pid: Int32
        var expiresAt: Double
    }

    public static let timeToLive: TimeInterval = 600

    public let id: String
    public let kind: Kind
    let repository: BackupRepository
    private let renewed = RenewalClock()

    var key: String { Self.key(id) }
    static func key(_ id: String) -> String { "\(BackupRepository.root)leases/\(id).json" }

    static var hostName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Writes (or renews) the lease.
    public static func write(_ kind: Kind, in repository: BackupRepository,
                             id: String? = nil) async throws(ConvoyError) -> StoreLease {
        let lease = StoreLease(id: id ?? ObjectName.generate(prefix: kind.rawValue), kind: kind, repository: repository)
        try await lease.renew()
        return lease
    }

    public func renew() async throws(ConvoyError) {
        let record = Record(id: id, kind: kind, host: Self.hostName, pid: getpid(),
                            expiresAt: Date().timeIntervalSince1970 + Self.timeToLive)
        let data = (try? JSONEncoder().encode(record)) ?? Data()
        try await repository.store.put(key, Array(data))
        renewed.mark()
    }

    /// Renews when a quarter of the lease's life has passed since the last renewal.
    public func renewIfDue() async throws(ConvoyError) {
        if renewed.due(after: Self.timeToLive / 4) { try await renew() }
    }

    public func release() async {
        try? await repository.store.delete([key])
    }

    /// Live leases other than this one. Expired leases, and leases of dead processes on this host (a crashed
    /// daemon), do not count, and are removed.
    func others() async throws(ConvoyError) -> [Record] {
        var live: [Record] = []
        let now = Date().timeIntervalSince1970
        let host = Self.hostName
        for object in try await repository.store.list(prefix: "\(BackupRepository.root)leases/")
            where object.key != key {
            guard let bytes = try? await repository.store.get(object.key),
                  let record = try? JSONDecoder().decode(Record.self, from: Data(bytes)) else { continue }
            let deadHere = record.host == host && kill(record.pid, 0) != 0 && errno == ESRCH
            if record.expiresAt < now || deadHere {
                try? await repository.store.delete([object.key])
                continue
            }
            live.append(record)
        }
        return live
    }

    /// For a backup: waits while a GC lease is live (bounded), so blocks the backup finds are not swept under it.
    public func waitForCollectors(timeout: TimeInterval = 900) async throws(ConvoyError) {
        let deadline = Date().addingTimeInterval(timeout)
        while try await others().contains(where: { $0.kind == .gc }) {
            guard Date() < deadline else {
                throw ConvoyError(.unavailable, "a garbage collection has held \(repository.store.location) "
                    + "for over \(Int(timeout)) s; try again later")
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}

/// When a lease was last renewed (shared by copies of the lease value).
final class RenewalClock: Sendable {
    private let last = Mutex(Date())

    func mark() { last.withLock { $0 = Date() } }

    func due(after interval: TimeInterval) -> Bool {
        last.withLock { Date().timeIntervalSince($0) > interval }
    }
}

extension StoreLease {
    /// Writes backup `backupID` of `volume`: checks both names, prepares the store, then runs `body` holding a
    /// backup lease on it, once no collection runs, and releases the lease however `body` ends.
    static func whileWriting<T>(backup backupID: String, of volume: String, in repository: BackupRepository,
                                _ body: (StoreLease) async throws(ConvoyError) -> T) async throws(ConvoyError) -> T {
        try ObjectName.validate(volume)
        try ObjectName.validate(backupID, kind: "backup")
        try await repository.prepare()
        let lease = try await StoreLease.write(.backup, in: repository)
        do {
            try await lease.waitForCollectors()
            try await repository.packs.refresh(from: repository.store)
            let result = try await body(lease)
            await lease.release()
            return result
        } catch {
            await lease.release()
            throw error
        }
    }
}
