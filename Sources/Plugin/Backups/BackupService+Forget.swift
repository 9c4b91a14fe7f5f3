import Backupstore
import ConvoyCore
import Foundation

/// Forgetting backups by a retention policy (`RetentionPolicy`: restic's rules), each volume's backups judged on
/// their own. The forgotten backups' manifests are deleted, then one collection frees the blocks only they used
/// (deferred, as for a delete, while another writer holds the store); a driver's own backups (ebs) are deleted by
/// the driver. A backup a lazily restored volume still reads from is kept, whatever the rules say (reason
/// "lazy volume NAME"). A dry run deletes nothing and says the same.
extension BackupService {
    public func forget(_ request: ClientAPI.ForgetRequest) async throws(ConvoyError) -> ClientAPI.ForgetResult {
        try request.policy.validate()
        let backups = try await listBackups(destination: request.destination, volume: request.volumeName)
        var reading: [String: String] = [:]
        for volume in try catalog.store.volumes() {
            if let url = volume.driverInfo[LazyVolumes.backupKey] { reading[url] = volume.name }
        }
        let times = BackupTimes()
        var entries: [ClientAPI.ForgetResult.Entry] = []
        for (volume, ofVolume) in Dictionary(grouping: backups, by: \.volumeName).sorted(by: { $0.key < $1.key }) {
            let timed = try ofVolume.map { backup throws(ConvoyError) in
                (id: backup.url, time: try times.date(of: backup))
            }
            let byURL = Dictionary(ofVolume.map { ($0.url, $0) }, uniquingKeysWith: { first, _ in first })
            for decision in request.policy.apply(to: timed) {
                var reasons = decision.reasons
                if let lazy = reading[decision.id] { reasons.append("lazy volume \(lazy)") }
                entries.append(.init(url: decision.id, volumeName: volume,
                                     createdTime: byURL[decision.id]?.createdTime ?? "", keep: !reasons.isEmpty,
                                     reasons: reasons))
            }
        }
        let forgotten = entries.filter { !$0.keep }.map(\.url)
        guard !request.dryRun, !forgotten.isEmpty else {
            return ClientAPI.ForgetResult(backups: entries, dryRun: request.dryRun, collection: nil)
        }
        if let native = try nativeDriver(for: request.destination) {
            for url in forgotten { _ = try await native.deleteBackup(url) }
            return ClientAPI.ForgetResult(backups: entries, dryRun: false, collection: nil)
        }
        let (_, repository) = try await repository(at: request.destination, for: .existingBackups)
        for url in forgotten {
            let backup = try BackupURL.parse(url)
            try await repository.deleteManifest(volume: backup.volume, backup: backup.backupID)
        }
        let result = try await GarbageCollector(repository: repository,
                                                thresholds: request.repackAll == true ? .exact : .standard).collect()
        var collection = Self.describe(result)
        if let reason = result.deferredBecause { collection["CollectionDeferred"] = reason }
        return ClientAPI.ForgetResult(backups: entries, dryRun: false, collection: collection)
    }
}

/// Backups' creation times (ISO 8601, with or without fractions of a second), read with one pair of formatters
/// for a whole listing.
private struct BackupTimes {
    let plain = ISO8601DateFormatter()
    let fractional: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()

    func date(of backup: ClientAPI.Backup) throws(ConvoyError) -> Date {
        guard let date = plain.date(from: backup.createdTime) ?? fractional.date(from: backup.createdTime) else {
            throw ConvoyError(.stateFailure, "backup \(backup.url) has no readable creation time "
                + "('\(backup.createdTime)'); it cannot be judged by age")
        }
        return date
    }
}
