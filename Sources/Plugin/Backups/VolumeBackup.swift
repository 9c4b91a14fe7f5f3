import Backupstore
import ConvoyCore
import Foundation

/// A file volume backed up straight into a backup store, without a snapshot: the tree is read once and its new
/// blocks written once, to the destination only. A snapshot first (`snapshot create`, then `backup create`)
/// writes every new block to the local snapshot store and again to the destination, and the local store keeps a
/// copy of the volume's data for as long as the snapshot lives. Incremental against the volume's last backup in
/// that destination (the store's per-volume record names it): files unchanged since (size, mtime, inode) are not
/// read again. The volume cannot be deleted while it runs.
extension SnapshotService {
    /// Whether `backUpVolume` takes this volume to this destination: a file volume (its driver has no snapshots
    /// of its own) and a backup store (not a driver's own service such as `ebs://`).
    func backsUpDirectly(_ name: String, to destination: String,
                         backups: BackupService) throws(ConvoyError) -> Bool {
        let record = try volumes.get(name)
        guard !(volumes.drivers[record.driver] is any SnapshotDriver) else { return false }
        return try backups.nativeDriver(for: destination) == nil
    }

    /// `takenAt`: the time the backup is stamped with; now when nil (a scheduled one passes its clock's).
    public func backUpVolume(_ name: String, to destination: String, backups: BackupService,
                             takenAt: Date? = nil) async throws(ConvoyError) -> ClientAPI.Job {
        let record = try volumes.get(name)
        if volumes.drivers[record.driver] is any SnapshotDriver {
            throw .invalid("volume \(name) uses driver \(record.driver), whose snapshots are its own: take one and "
                + "back it up (convoy snapshot create \(name), then convoy backup create SNAPSHOT --dest URL)")
        }
        if try backups.nativeDriver(for: destination) != nil {
            throw .invalid("\(destination) keeps a driver's own snapshots; back up a volume to a backup store "
                + "(vfs:///path or s3://bucket@region/path)")
        }
        let directory = try await readableDirectory(of: record)
        let (location, target) = try await backups.repository(at: destination, for: .newBackup)
        let backupID = ObjectName.generate(prefix: "backup")
        try await volumes.beginJob(on: name)
        let volumes = self.volumes
        do throws(ConvoyError) {
            return try await jobs.start(kind: "backup create", target: "\(name) → \(location.url)") {
                progress throws(ConvoyError) in
                defer { Task { await volumes.endJob(on: name) } }
                let parent = await Self.lastFileBackup(of: name, in: target)
                let outcome = try await FileBackupWriter(repository: target).backup(.init(
                    source: directory, volume: name, backupID: backupID, snapshot: nil, parent: parent,
                    volumeSize: record.size, createdAt: takenAt.map { VolumeService.timestamp($0) }),
                    progress: progress)
                let stats = outcome.manifest.stats
                let url = BackupURL(destination: location, backupID: backupID, volume: name)
                var result = ["URL": url.url, "Bytes": "\(stats.bytes)", "BytesRead": "\(stats.bytesRead)",
                              "BytesStored": "\(stats.newBytesStored)"]
                result[SkippedReport.resultKey] = SkippedReport(outcome, snapshot: nil)?.summary
                return result
            }
        } catch {
            await volumes.endJob(on: name)
            throw error
        }
    }

    /// The manifest of the volume's last backup in `repository`, when it is a file backup that is still there
    /// (else the backup reads every file; blocks the store has are still not written again).
    private static func lastFileBackup(of volume: String, in repository: BackupRepository) async -> Manifest? {
        guard let last = try? await repository.volumeRecord(volume)?.lastBackup,
              let manifest = try? await repository.manifest(volume: volume, backup: last),
              manifest.kind == .files else { return nil }
        return manifest
    }
}
