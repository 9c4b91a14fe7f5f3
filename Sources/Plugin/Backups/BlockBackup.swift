import Backupstore
import ConvoyCore

/// Block backups of a block-image driver's snapshots (thin snapshots), straight into the destination:
/// incremental against the snapshot the volume's last backup there was taken from, when that snapshot is
/// still here; only the blocks the driver reports changed are read.
extension BackupService {
    func createBlockBackup(_ snapshot: ClientAPI.Snapshot,
                           destination: String, backupID: String) async throws(ConvoyError) -> ClientAPI.Job {
        guard let driver = try catalog.keepingDriver(of: snapshot, as: (any BlockImageDriver).self) else {
            throw ConvoyError(.internalFailure, "snapshot \(snapshot.name) is a file snapshot, not a block one")
        }
        let info = snapshot.driverInfo ?? [:]
        let (location, target) = try await repository(at: destination, for: .newBackup)
        let store = catalog.store
        return try await jobs.start(kind: "backup create", target: "\(snapshot.name) → \(location.url)") {
            progress throws(ConvoyError) in
            let base = await Self.incrementalBase(of: snapshot, in: target, store: store, blockSize: driver.blockSize)
            progress(WorkProgress(phase: "finding changed blocks"))
            let plan = try await driver.changedBlocks(of: info, since: base?.info)
            let changed = Set(plan.read)
            let baseChunks = base?.manifest.entries.first { $0.path == Manifest.imagePath }?.chunks ?? []
            let kept = baseChunks.filter { chunk in
                let index = chunk.offset / driver.blockSize
                return !changed.contains(index) && !plan.unmapped.contains(index)
            }
            let device = try await driver.activateSnapshot(snapshot.name, info: info)
            let manifest: Manifest
            do throws(ConvoyError) {
                manifest = try await BlockBackupWriter(repository: target).backup(.init(
                    device: device, volume: snapshot.volumeName, backupID: backupID, snapshot: snapshot.name,
                    volumeSize: UInt64(info["Size"] ?? "") ?? snapshot.size, blockSize: driver.blockSize,
                    read: plan.read, kept: kept, parent: base?.manifest.id,
                    createdAt: snapshot.createdTime.isEmpty ? nil : snapshot.createdTime), progress: progress)
            } catch {
                try? await driver.deactivateSnapshot(snapshot.name)
                throw error
            }
            try await driver.deactivateSnapshot(snapshot.name)
            let url = BackupURL(destination: location, backupID: backupID, volume: snapshot.volumeName)
            return ["URL": url.url, "BlocksRead": "\(plan.read.count)", "BytesRead": "\(manifest.stats.bytesRead)",
                    "NewBlocks": "\(manifest.stats.newBlocks)", "Incremental": base == nil ? "false" : "true",
                    "Bytes": "\(manifest.stats.bytes)", "BytesStored": "\(manifest.stats.newBytesStored)"]
        }
    }

    /// The destination's last backup of this volume, when it is a block backup of the same block size whose
    /// snapshot (another one) is still here: the base of an incremental backup. Nil: a full backup.
    private static func incrementalBase(of snapshot: ClientAPI.Snapshot, in target: BackupRepository,
                                        store: StateStore, blockSize: UInt64) async
        -> (manifest: Manifest, info: [String: String])? {
        guard let record = try? await target.volumeRecord(snapshot.volumeName), let last = record.lastBackup,
              let manifest = try? await target.manifest(volume: snapshot.volumeName, backup: last),
              manifest.kind == .blocks, let baseName = manifest.snapshot, baseName != snapshot.name,
              let baseInfo = (try? store.snapshot(named: baseName))??.driverInfo else { return nil }
        let firstChunk = manifest.entries.first { $0.path == Manifest.imagePath }?.chunks?.first
        guard firstChunk.map({ UInt64($0.length) == blockSize }) ?? true else { return nil }
        return (manifest, baseInfo)
    }
}
