import Backupstore
import ConvoyCore
import Foundation

/// Which host owns a replicated volume, kept in the volume's replica store beside its backups
/// (`convoy-backupstore/replicas/<volume>.json`): renewed at every replica, it expires three intervals after the
/// last renewal. Another host takes the volume only once it has expired (or by `takeover=force`); the host that
/// finds its lease taken is fenced. Hosts' clocks are assumed to agree within a small part of an interval.
struct ReplicaLease: Codable, Sendable, Equatable {
    var volume: String
    var host: String
    var expiresAt: Double
    /// The newest replica (a backup URL) and when its snapshot was taken (the age of the data it holds).
    var lastBackup: String?
    var lastBackupAt: Double?

    func isLive(at now: Date = Date()) -> Bool { expiresAt > now.timeIntervalSince1970 }

    var expiry: String { Date(timeIntervalSince1970: expiresAt).formatted(.iso8601) }

    static func key(_ volume: String) -> String { "convoy-backupstore/replicas/\(volume).json" }

    static func read(_ volume: String, in repository: BackupRepository) async throws(ConvoyError) -> ReplicaLease? {
        let bytes: [UInt8]
        do {
            bytes = try await repository.store.get(key(volume))
        } catch where error.kind == .notFound {
            return nil
        }
        do {
            return try JSONDecoder().decode(ReplicaLease.self, from: Data(bytes))
        } catch {
            throw ConvoyError(.driverFailure, "the replica lease of volume \(volume) is damaged (\(error))")
        }
    }

    func write(to repository: BackupRepository) async throws(ConvoyError) {
        let data: Data
        do { data = try JSONEncoder().encode(self) } catch {
            throw ConvoyError(.internalFailure, "cannot encode the replica lease of \(volume): \(error)")
        }
        try await repository.store.put(Self.key(volume), Array(data))
    }

    static func remove(_ volume: String, from repository: BackupRepository) async {
        try? await repository.store.delete([key(volume)])
    }
}
