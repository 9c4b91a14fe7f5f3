import Backupstore
import ConvoyCore
import Foundation

/// Restores: a new volume filled from a backup, as a job. The backup's URL says where it is read from: a backup
/// store (a file backup into a directory-backed volume, a block backup onto a block volume, or a Convoy 0.5
/// backup: `LegacyRestore`), or a driver's own service (`ebs://`), whose driver makes the volume from it.
/// Lazy restores (usable before the data is local) are `LazyRestore`'s.
public struct RestoreService: Sendable {
    let planner: RestorePlanner
    let jobs: JobManager
    let stores: StoreFactory
    /// Where downloads wait before they are unpacked (legacy restores).
    let scratch: String

    public init(planner: RestorePlanner, jobs: JobManager, stores: StoreFactory, root: String) {
        self.planner = planner
        self.jobs = jobs
        self.stores = stores
        self.scratch = root + "/tmp"
    }

    /// Creates volume `name` (a generated name when nil) from the backup at `url`; on any failure nothing of the
    /// volume is left. `wait`: answer when the restore has ended (Docker's Create with `-o backup=URL`) with the
    /// succeeded job, or throw its error; otherwise answer the job as it starts (the CLI follows it).
    public func restore(name: String?, backup url: String, options: [String: String],
                        wait: Bool) async throws(ConvoyError) -> ClientAPI.Job {
        let volumeName = try name.map { name throws(ConvoyError) in try ObjectName.validate(name) }
            ?? ObjectName.generate(prefix: "volume")
        let target: String
        let work: JobManager.Work
        if let native = try NativeBackups.driver(for: url, among: planner.volumes.drivers) {
            target = "\(url) → \(volumeName)"
            let volumes = planner.volumes
            work = { _ throws(ConvoyError) in
                try await Self.restoreNative(volumes: volumes, driver: native, url: url, name: volumeName,
                                             options: options)
            }
        } else {
            let backup = try BackupURL.parse(url)
            let repository = try await stores.repository(backup.destination, for: .existingBackups)
            target = "\(backup.url) → \(volumeName)"
            let (planner, scratch) = (self.planner, self.scratch)
            work = { progress throws(ConvoyError) in
                try await Self.restoreFromStore(planner: planner, repository: repository, backup: backup,
                                                name: volumeName, options: options, scratch: scratch,
                                                progress: progress)
            }
        }
        if wait { return try await jobs.run(kind: "restore", target: target, work: work) }
        return try await jobs.start(kind: "restore", target: target, work: work)
    }

    static func restoreFromStore(planner: RestorePlanner, repository: BackupRepository, backup: BackupURL,
                                 name: String, options: [String: String], scratch: String,
                                 progress: @escaping ProgressSink) async throws(ConvoyError) -> [String: String] {
        let manifest: Manifest
        do {
            manifest = try await repository.manifest(volume: backup.volume, backup: backup.backupID)
        } catch where error.kind == .notFound {
            let legacy = LegacyConvoyStore(store: repository.store)
            guard let config = try await legacy.backupConfig(volume: backup.volume, backup: backup.backupID) else {
                throw error
            }
            return try await LegacyRestore(planner: planner, legacy: legacy, backup: backup, scratch: scratch)
                .restore(config, name: name, options: options, progress: progress)
        }
        let record: VolumeRecord
        if manifest.kind == .blocks {
            record = try await planner.createForImage(name: name, options: options, recordedSize: manifest.volumeSize,
                                                      what: "backup \(manifest.id)") {
                driver, volume throws(ConvoyError) in
                let device = try await driver.deviceForImage(volume)
                try await BlockRestorer(repository: repository).restore(manifest, onto: device, progress: progress)
                return [VolumeRecord.madeFromKey: backup.url]
            }
        } else {
            record = try await planner.createForFiles(name: name, options: options,
                                                      recordedSize: manifest.volumeSize) {
                directory, _, _ throws(ConvoyError) in
                try await FileRestorer(repository: repository).restore(manifest, into: directory, progress: progress)
                return [VolumeRecord.madeFromKey: backup.url]
            }
        }
        return ["Volume": record.name]
    }

    /// A new volume of the backup's driver, made from the backup by the driver itself.
    /// `origin`: what the volume is recorded as made from (`VolumeRecord.madeFromKey`), the URL unless given.
    static func restoreNative(volumes: VolumeService, driver: any NativeBackupDriver, url: String, name: String,
                              options: [String: String],
                              origin: String? = nil) async throws(ConvoyError) -> [String: String] {
        var options = options.merging(try driver.restoreOptions(url)) { _, own in own }
        if let named = options["driver"], named != driver.name {
            throw .invalid("'\(url)' is a \(driver.name) backup: it restores only with the \(driver.name) driver")
        }
        options["driver"] = driver.name
        let madeFrom = origin ?? url
        let record = try await volumes.create(name: name, options: options, mustBeNew: true) { _, _ in
            [VolumeRecord.madeFromKey: madeFrom]
        }
        return ["Volume": record.name]
    }
}
