import Backupstore
import ConvoyCore
import Drivers
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Restores of Rancher Convoy 0.5 backups (docs/design.md, "Decisions"): a single-file backup's tar.gz unpacked
/// into a new directory volume, or a devicemapper backup's 2 MiB gzip blocks written onto a new block volume.
struct LegacyRestore {
    let planner: RestorePlanner
    let legacy: LegacyConvoyStore
    let backup: BackupURL
    let scratch: String

    func restore(_ config: LegacyConvoyStore.BackupConfig, name: String, options: [String: String],
                 progress: @escaping ProgressSink) async throws(ConvoyError) -> [String: String] {
        if let blocks = config.Blocks, !blocks.isEmpty {
            return try await restoreBlocks(blocks, name: name, options: options, progress: progress)
        }
        return try await restoreArchive(config, name: name, options: options, progress: progress)
    }

    /// The tar.gz unpacked with GNU tar (which refuses members with `..` and does not follow symlinks it
    /// extracted).
    private func restoreArchive(_ config: LegacyConvoyStore.BackupConfig, name: String, options: [String: String],
                                progress: @escaping ProgressSink) async throws(ConvoyError) -> [String: String] {
        progress(WorkProgress(phase: "downloading Convoy backup"))
        try Filesystem.makeDirectory(scratch, mode: 0o700)
        let path = scratch + "/legacy-\(backup.backupID).tar.gz"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let size = try await legacy.downloadSingleFileArchive(volume: backup.volume, config: config, to: path)
        progress(WorkProgress(phase: "unpacking", bytesTotal: size))
        // Generous: unpacking runs at tens of MB/s even on slow disks.
        let timeout = Duration.seconds(120 + Int(size / 5_000_000))
        let record = try await planner.createForFiles(name: name, options: options, recordedSize: 0) {
            directory, _, _ throws(ConvoyError) in
            _ = try await ExternalCommand.run("/bin/tar", [
                "-xzf", path, "-C", directory, "--same-owner", "--same-permissions", "--numeric-owner",
                "--xattrs", "--no-overwrite-dir",
            ], timeout: timeout)
            return [:]
        }
        progress(WorkProgress(phase: "restored", bytesDone: size, bytesTotal: size))
        return ["Volume": record.name]
    }

    /// Each block checked against its SHA-512 name, written at its offset over a blank device.
    private func restoreBlocks(_ blocks: [LegacyConvoyStore.BackupConfig.Block], name: String,
                               options: [String: String],
                               progress: @escaping ProgressSink) async throws(ConvoyError) -> [String: String] {
        let blockLength: UInt64 = 2 << 20
        let recorded = try await legacy.volumeSize(volume: backup.volume)
        let end = blocks.map { UInt64(max(0, $0.Offset)) + blockLength }.max() ?? 0
        let total = UInt64(blocks.count) * blockLength
        let legacy = self.legacy
        let record = try await planner.createForImage(
            name: name, options: options, recordedSize: max(recorded, end),
            what: "this Convoy backup of \(backup.volume)"
        ) { driver, volume throws(ConvoyError) in
            let device = try await driver.deviceForImage(volume)
            let fd = open(device, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw PosixFile.failure("open", device) }
            defer { close(fd) }
            var done: UInt64 = 0
            for block in blocks {
                let data = try await legacy.block(block.BlockChecksum)
                guard block.Offset >= 0,
                      UInt64(block.Offset) + UInt64(data.count) <= (volume.size ?? UInt64.max) else {
                    throw ConvoyError(.driverFailure, "Convoy block \(block.BlockChecksum) lies outside the volume "
                        + "(offset \(block.Offset))")
                }
                try PosixFile.writeAll(fd, data, at: UInt64(block.Offset), path: device)
                done += UInt64(data.count)
                progress(WorkProgress(phase: "restoring Convoy blocks", bytesDone: done, bytesTotal: total))
            }
            guard fsync(fd) == 0 else { throw PosixFile.failure("sync", device) }
            return [:]
        }
        return ["Volume": record.name]
    }
}
