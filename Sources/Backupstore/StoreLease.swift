import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Leases coordinate writers of one store (Longhorn-style lease files with an expiry). A backup holds a `backup`
/// lease while it uploads; garbage collection needs a `gc` lease and no other live lease. Each side writes its
/// lease before looking at the others', so whichever order they race in, GC never sweeps while a backup that may
/// reference a block is in flight. A held lease is renewed on a timer (`holding`), whatever its holder is doing, so a
/// long listing or mark phase never lets it expire; a collector reads the leases again just before each deletion
/// (`reasonToStop`). A lease is taken for a dead writer's only by its expiry, or when its writer certainly no
/// longer runs (`WriterIdentity`), never by hostname and pid.
public struct StoreLease: Sendable {
    public enum Kind: String, Codable, Sendable {
        case backup
        case gc
    }

    struct Record: Codable {
        var id: String
        var kind: Kind
        /// For older convoy, which judges by these; this one reads `writer`.
        var host: String
        var pid: Int32
        var expiresAt: Double
        /// Absent in leases older convoy wrote: those end by expiry only.
        var writer: WriterIdentity?
        /// The daemon's host id (issue 19), for messages and for other hosts; absent in older leases.
        var hostID: String?
    }

    public static let timeToLive: TimeInterval = 600

    public let id: String
    public let kind: Kind
    let repository: BackupRepository
    let failures = LeaseFailures()

    var key: String { Self.key(id) }
    static func key(_ id: String) -> String { "\(BackupRepository.root)leases/\(id).json" }

    /// Writes (or renews) the lease.
    public static func write(_ kind: Kind, in repository: BackupRepository,
                             id: String? = nil) async throws(ConvoyError) -> StoreLease {
        let lease = StoreLease(id: id ?? ObjectName.generate(prefix: kind.rawValue), kind: kind, repository: repository)
        try await lease.renew()
        return lease
    }

    public func renew() async throws(ConvoyError) {
        try await write(expiresAt: Date().timeIntervalSince1970 + Self.timeToLive)
    }

    private func write(expiresAt: Double) async throws(ConvoyError) {
        let me = WriterIdentity.current
        let record = Record(id: id, kind: kind, host: me.host, pid: me.pid, expiresAt: expiresAt, writer: me,
                            hostID: repository.hostID)
        let data = (try? JSONEncoder().encode(record)) ?? Data()
        try await repository.store.put(key, Array(data))
    }

    /// Removes the lease; where nothing may be deleted (append-only), rewrites it as expired, so it holds nobody
    /// off and the next collection of a trusted host removes it.
    public func release() async {
        if repository.store.appendOnlyReason != nil {
            try? await write(expiresAt: 0)
        } else {
            try? await repository.store.delete([key])
        }
    }

    /// Live leases other than this one. Expired leases, and leases of writers that certainly no longer run (a
    /// crashed daemon of this machine), do not count, and are removed.
    func others() async throws(ConvoyError) -> [Record] {
        var live: [Record] = []
        let now = Date().timeIntervalSince1970
        for object in try await repository.store.list(prefix: "\(BackupRepository.root)leases/")
            where object.key != key {
            guard let bytes = try? await repository.store.get(object.key),
                  let record = try? JSONDecoder().decode(Record.self, from: Data(bytes)) else { continue }
            if record.expiresAt < now || record.writer?.isCertainlyDead == true {
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

extension StoreLease {
    /// Writes backup `backupID` of `volume`: checks both names, prepares the store, then runs `body` holding a
    /// backup lease on it, once no collection runs, and releases the lease however `body` ends.
    static func whileWriting<T>(backup backupID: String, of volume: String, in repository: BackupRepository,
                                _ body: (StoreLease) async throws(ConvoyError) -> T) async throws(ConvoyError) -> T {
        try ObjectName.validate(volume)
        try ObjectName.validate(backupID, kind: "backup")
        try await repository.prepare()
        return try await holding(.backup, in: repository) { lease throws(ConvoyError) in
            try await lease.waitForCollectors()
            try await repository.packs.refresh(from: repository.store)
            return try await body(lease)
        }
    }
}
