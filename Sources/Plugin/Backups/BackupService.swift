import Backupstore
import ConvoyCore
import Drivers
import Foundation
import Logging
import Synchronization

/// Snapshots, backups and restores of directory-backed volumes (vfs today, glusterfs later): one implementation
/// for every such driver. A snapshot is a file backup into the daemon's local store (`<root>/snapshots`), so the
/// snapshots of a volume share blocks and only changed files are read; a backup copies a snapshot's missing
/// blocks and its manifest to a destination store; a restore fills a new volume from a backup.
public struct BackupService: Sendable {
    let volumes: VolumeService
    let jobs: JobManager
    let store: StateStore
    let local: BackupRepository
    let stores: StoreFactory
    let logger: Logger
    /// Where downloads wait before they are unpacked (legacy restores).
    let scratch: String
    /// Snapshot names being created, so two requests for one name cannot both pass the uniqueness check.
    let creating = NameReservations()
    /// Lazily restored volumes are read through their overlay until they are hydrated.
    let lazy: LazyRestore?

    public init(volumes: VolumeService, jobs: JobManager, root: String, stores: StoreFactory = StoreFactory(),
                lazy: LazyRestore? = nil, logger: Logger) throws(ConvoyError) {
        self.volumes = volumes
        self.lazy = lazy
        self.jobs = jobs
        self.store = volumes.store
        self.local = BackupRepository(store: try FileObjectStore(root: root + "/snapshots"))
        self.stores = stores
        self.logger = logger
        self.scratch = root + "/tmp"
    }

    // MARK: Snapshots

    public func createSnapshot(volume name: String, snapshot requested: String?) async throws(ConvoyError) -> ClientAPI.Job {
        let record = try volumes.get(name)
        let snapshotName = try requested.map { name throws(ConvoyError) in try ObjectName.validate(name, kind: "snapshot") }
            ?? ObjectName.generate(prefix: "snapshot")
        guard creating.reserve(snapshotName) else {
            throw .conflict("a snapshot named \(snapshotName) is being created; choose another name")
        }
        guard try store.snapshot(named: snapshotName) == nil else {
            creating.release(snapshotName)
            throw .conflict("a snapshot named \(snapshotName) exists already; snapshot names are unique per daemon")
        }
        let (local, store, volumes, creating) = (self.local, self.store, self.volumes, self.creating)
        if let driver = volumes.drivers[record.driver] as? any SnapshotDriver {
            return try await createDriverSnapshot(record, name: snapshotName, driver: driver)
        }
        var began = false
        do {
            let directory: String
            if let merged = await lazy?.readableDirectory(of: name) { directory = merged } else { directory = try dataDirectory(record) }
            let parentName = try store.snapshots(volume: name).last?.name
            try await volumes.beginJob(on: name)
            began = true
            return try await jobs.start(kind: "snapshot create", target: "\(name)/\(snapshotName)") { progress throws(ConvoyError) in
                defer {
                    creating.release(snapshotName)
                    Task { await volumes.endJob(on: name) }
                }
                let parent = try await parentName.asyncMap { parent throws(ConvoyError) in
                    try await local.manifest(volume: name, backup: parent)
                }
                let manifest = try await FileBackupWriter(repository: local).backup(.init(
                    source: directory, volume: name, backupID: snapshotName, snapshot: snapshotName, parent: parent,
                    volumeSize: record.size), progress: progress)
                let snapshot = ClientAPI.Snapshot(
                    name: snapshotName, volumeName: name, createdTime: manifest.createdAt, size: manifest.stats.bytes,
                    files: manifest.stats.files, bytesRead: manifest.stats.bytesRead,
                    newBytesStored: manifest.stats.newBytesStored)
                try store.insertSnapshot(snapshot)
                return ["Snapshot": snapshotName]
            }
        } catch {
            creating.release(snapshotName)
            if began { await volumes.endJob(on: name) }
            throw error
        }
    }

    /// A snapshot the driver keeps itself (a thin snapshot): instant, but a job like the others for one CLI path.
    private func createDriverSnapshot(_ record: VolumeRecord, name snapshotName: String,
                                      driver: any SnapshotDriver) async throws(ConvoyError) -> ClientAPI.Job {
        let (store, volumes, creating) = (self.store, self.volumes, self.creating)
        let volume = record.name
        do {
            try await volumes.beginJob(on: volume)
        } catch {
            creating.release(snapshotName)
            throw error
        }
        return try await jobs.start(kind: "snapshot create", target: "\(volume)/\(snapshotName)") { _ throws(ConvoyError) in
            defer {
                creating.release(snapshotName)
                Task { await volumes.endJob(on: volume) }
            }
            var info = try await driver.createSnapshot(snapshotName, of: record.driverVolume)
            info["Driver"] = driver.name
            do throws(ConvoyError) {
                try store.insertSnapshot(ClientAPI.Snapshot(
                    name: snapshotName, volumeName: volume, createdTime: VolumeService.timestamp(), size: record.size,
                    files: 0, bytesRead: 0, newBytesStored: 0, driverInfo: info))
            } catch {
                try? await driver.deleteSnapshot(snapshotName, info: info, of: record.driverVolume)
                throw error
            }
            return ["Snapshot": snapshotName]
        }
    }

    public func snapshot(_ name: String) throws(ConvoyError) -> ClientAPI.Snapshot {
        try ObjectName.validate(name, kind: "snapshot")
        guard let snapshot = try store.snapshot(named: name) else {
            throw .notFound("no snapshot named '\(name)'; `convoy snapshot list` shows them")
        }
        return snapshot
    }

    public func snapshots(volume: String?) throws(ConvoyError) -> [ClientAPI.Snapshot] {
        if let volume { try ObjectName.validate(volume) }
        return try store.snapshots(volume: volume)
    }

    /// Deletes a snapshot and collects the blocks only it used.
    public func deleteSnapshot(_ name: String) async throws(ConvoyError) {
        let snapshot = try snapshot(name)
        if let info = snapshot.driverInfo {
            try await deleteDriverSnapshot(snapshot, info: info)
            return
        }
        try await local.deleteManifest(volume: snapshot.volumeName, backup: name)
        try store.deleteSnapshot(name)
        let result = try await GarbageCollector(repository: local).collect()
        logger.info("deleted snapshot", metadata: ["snapshot": "\(name)", "blocksFreed": "\(result.blocksDeleted)",
                                                   "packsRewritten": "\(result.packsRewritten)"])
        for damaged in result.packsWithDamagedIndex {
            logger.warning("snapshot store: a pack's index cannot be read; the pack is kept", metadata: ["pack": "\(damaged)"])
        }
    }

    private func deleteDriverSnapshot(_ snapshot: ClientAPI.Snapshot, info: [String: String]) async throws(ConvoyError) {
        guard let driver = volumes.drivers[info["Driver"] ?? ""] as? any SnapshotDriver else {
            throw ConvoyError(.unavailable, "snapshot \(snapshot.name) belongs to driver \(info["Driver"] ?? "?"), which this daemon does not run")
        }
        let volume = (try? volumes.get(snapshot.volumeName))?.driverVolume ?? DriverVolume(name: snapshot.volumeName, size: nil)
        try await driver.deleteSnapshot(snapshot.name, info: info, of: volume)
        try store.deleteSnapshot(snapshot.name)
        logger.info("deleted snapshot", metadata: ["snapshot": "\(snapshot.name)", "driver": "\(driver.name)"])
    }

    /// Deletes every snapshot of a volume (when the volume itself is deleted).
    public func deleteSnapshots(ofVolume volume: String) async throws(ConvoyError) {
        var snapshots: [ClientAPI.Snapshot] = []
        for snapshot in try store.snapshots(volume: volume) {
            if let info = snapshot.driverInfo { try await deleteDriverSnapshot(snapshot, info: info) } else { snapshots.append(snapshot) }
        }
        // Most volumes have none: no collection (a walk of every manifest and block) for them.
        guard !snapshots.isEmpty else { return }
        for snapshot in snapshots {
            try await local.deleteManifest(volume: volume, backup: snapshot.name)
            try store.deleteSnapshot(snapshot.name)
        }
        _ = try await GarbageCollector(repository: local).collect()
    }

    // MARK: Backups

    public func createBackup(snapshot name: String, destination: String) async throws(ConvoyError) -> ClientAPI.Job {
        let snapshot = try snapshot(name)
        if let info = snapshot.driverInfo {
            if let job = try await createNativeBackup(snapshot, info: info, destination: destination) { return job }
            return try await createBlockBackup(snapshot, info: info, destination: destination)
        }
        let location = try StoreLocation.parse(destination)
        let target = BackupRepository(store: try stores.open(location))
        let local = self.local
        let backupID = ObjectName.generate(prefix: "backup")
        return try await jobs.start(kind: "backup create", target: "\(name) → \(location.url)") { progress throws(ConvoyError) in
            let manifest = try await local.manifest(volume: snapshot.volumeName, backup: snapshot.name)
            _ = try await BackupCopier(source: local, destination: target).copy(manifest, as: backupID, progress: progress)
            let url = BackupURL(destination: location, backupID: backupID, volume: snapshot.volumeName)
            return ["URL": url.url]
        }
    }

    /// A block backup of a thin snapshot, straight into the destination: incremental against the snapshot the
    /// volume's last backup there was taken from, when that snapshot still exists here.
    private func createBlockBackup(_ snapshot: ClientAPI.Snapshot, info: [String: String],
                                   destination: String) async throws(ConvoyError) -> ClientAPI.Job {
        guard let driver = volumes.drivers[info["Driver"] ?? ""] as? DevicemapperDriver else {
            throw ConvoyError(.unavailable, "snapshot \(snapshot.name) belongs to driver \(info["Driver"] ?? "?"), which this daemon does not run")
        }
        let location = try StoreLocation.parse(destination)
        let target = BackupRepository(store: try stores.open(location))
        let store = self.store
        let backupID = ObjectName.generate(prefix: "backup")
        return try await jobs.start(kind: "backup create", target: "\(snapshot.name) → \(location.url)") { progress throws(ConvoyError) in
            // The base: the destination's last backup of this volume, if it is a block backup of the same block
            // size whose snapshot is still here.
            var base: (manifest: Manifest, info: [String: String])?
            if let record = try? await target.volumeRecord(snapshot.volumeName), let last = record.lastBackup,
               let manifest = try? await target.manifest(volume: snapshot.volumeName, backup: last), manifest.kind == .blocks,
               let baseName = manifest.snapshot, baseName != snapshot.name,
               let baseInfo = (try? store.snapshot(named: baseName))??.driverInfo,
               manifest.entries.first(where: { $0.path == Manifest.imageName })?.chunks?.first.map({ UInt64($0.length) == driver.blockSize }) ?? true {
                base = (manifest, baseInfo)
            }
            progress(WorkProgress(phase: "finding changed blocks"))
            let plan = try await driver.blocksToBackUp(snapshot: info, base: base?.info)
            let changed = Set(plan.read)
            let kept = (base?.manifest.entries.first { $0.path == Manifest.imageName }?.chunks ?? []).filter { chunk in
                let index = chunk.offset / driver.blockSize
                return !changed.contains(index) && !plan.unmapped.contains(index)
            }
            let device = try await driver.activateSnapshot(snapshot.name, info: info)
            let manifest: Manifest
            do throws(ConvoyError) {
                manifest = try await BlockBackupWriter(repository: target).backup(.init(
                    device: device, volume: snapshot.volumeName, backupID: backupID, snapshot: snapshot.name,
                    volumeSize: UInt64(info["Size"] ?? "") ?? snapshot.size, blockSize: driver.blockSize, read: plan.read,
                    kept: kept, parent: base?.manifest.id), progress: progress)
            } catch {
                try? await driver.deactivateSnapshot(snapshot.name)
                throw error
            }
            try await driver.deactivateSnapshot(snapshot.name)
            let url = BackupURL(destination: location, backupID: backupID, volume: snapshot.volumeName)
            return ["URL": url.url, "BlocksRead": "\(plan.read.count)", "BytesRead": "\(manifest.stats.bytesRead)",
                    "NewBlocks": "\(manifest.stats.newBlocks)", "Incremental": base == nil ? "false" : "true"]
        }
    }

    public func listBackups(destination: String, volume: String?) async throws(ConvoyError) -> [ClientAPI.Backup] {
        if let native = try nativeDriver(for: destination) {
            if let volume { try ObjectName.validate(volume) }
            return try await native.listBackups(destination: destination, volume: volume)
        }
        let location = try StoreLocation.parse(destination)
        if let volume { try ObjectName.validate(volume) }
        let repository = BackupRepository(store: try stores.open(location))
        var result: [ClientAPI.Backup] = []
        for (volumeName, id) in try await repository.backups(volume: volume) {
            let manifest = try await repository.manifest(volume: volumeName, backup: id)
            result.append(Self.describe(manifest, location: location))
        }
        return result.sorted { ($0.createdTime, $0.backupName) < ($1.createdTime, $1.backupName) }
    }

    public func inspectBackup(_ url: String) async throws(ConvoyError) -> ClientAPI.Backup {
        if let native = try nativeDriver(for: url) { return try await native.inspectBackup(url) }
        let backup = try BackupURL.parse(url)
        let repository = BackupRepository(store: try stores.open(backup.destination))
        return Self.describe(try await repository.manifest(volume: backup.volume, backup: backup.backupID),
                             location: backup.destination)
    }

    /// Deletes a backup's manifest, then collects unreferenced blocks (deferred when another writer holds the store).
    public func deleteBackup(_ url: String) async throws(ConvoyError) -> [String: String] {
        if let native = try nativeDriver(for: url) { return try await native.deleteBackup(url) }
        let backup = try BackupURL.parse(url)
        let repository = BackupRepository(store: try stores.open(backup.destination))
        _ = try await repository.manifest(volume: backup.volume, backup: backup.backupID)
        try await repository.deleteManifest(volume: backup.volume, backup: backup.backupID)
        let result = try await GarbageCollector(repository: repository).collect()
        var answer = ["Deleted": backup.url, "BlocksFreed": "\(result.blocksDeleted)",
                      "PacksDeleted": "\(result.packsDeleted)", "PacksRewritten": "\(result.packsRewritten)"]
        if let reason = result.deferredBecause { answer["CollectionDeferred"] = reason }
        // Kept, since their blocks may be in use: the user should know the store needs attention.
        if !result.packsWithDamagedIndex.isEmpty {
            answer["PacksWithDamagedIndex"] = result.packsWithDamagedIndex.joined(separator: "; ")
        }
        return answer
    }

    public func verifyBackup(_ url: String) async throws(ConvoyError) -> ClientAPI.Job {
        if let native = try nativeDriver(for: url) {
            throw .invalid("'\(url)' is kept by the \(native.name) driver's own service, which checks it; only backup-store backups are verified")
        }
        let backup = try BackupURL.parse(url)
        let repository = BackupRepository(store: try stores.open(backup.destination))
        return try await jobs.start(kind: "backup verify", target: backup.url) { progress throws(ConvoyError) in
            let manifest = try await repository.manifest(volume: backup.volume, backup: backup.backupID)
            let problems = try await BackupVerifier(repository: repository).verify(manifest, progress: progress)
            var result = ["Blocks": "\(manifest.blockHashes.count)", "Problems": "\(problems.count)"]
            for (index, problem) in problems.enumerated() {
                result["Problem\(index + 1)"] = "\(problem.kind.rawValue) block \(problem.block) (used by \(problem.path))"
            }
            return result
        }
    }

    // MARK: Restore

    /// Creates volume `name` from a backup; on any failure nothing of the volume is left.
    public func restore(name: String?, backup url: String, options: [String: String]) async throws(ConvoyError) -> ClientAPI.Job {
        if let native = try nativeDriver(for: url) {
            let volumeName = try name.map { name throws(ConvoyError) in try ObjectName.validate(name) } ?? ObjectName.generate(prefix: "volume")
            let volumes = self.volumes
            return try await jobs.start(kind: "restore", target: "\(url) → \(volumeName)") { _ throws(ConvoyError) in
                try await Self.restoreNative(volumes: volumes, driver: native, url: url, name: volumeName, options: options)
            }
        }
        let backup = try BackupURL.parse(url)
        let repository = BackupRepository(store: try stores.open(backup.destination))
        let volumeName = try name.map { name throws(ConvoyError) in try ObjectName.validate(name) } ?? ObjectName.generate(prefix: "volume")
        let (volumes, scratch) = (self.volumes, self.scratch)
        return try await jobs.start(kind: "restore", target: "\(backup.url) → \(volumeName)") { progress throws(ConvoyError) in
            try await Self.restoreWork(volumes: volumes, repository: repository, backup: backup, name: volumeName,
                                       options: options, scratch: scratch, progress: progress)
        }
    }

    /// Docker's Create with `-o backup=URL`: the same work, answered when it is done.
    public func restoreAndWait(name: String, backup url: String, options: [String: String]) async throws(ConvoyError) {
        if let native = try nativeDriver(for: url) {
            let volumes = self.volumes
            _ = try await jobs.run(kind: "restore", target: "\(url) → \(name)") { _ throws(ConvoyError) in
                try await Self.restoreNative(volumes: volumes, driver: native, url: url, name: name, options: options)
            }
            return
        }
        let backup = try BackupURL.parse(url)
        let repository = BackupRepository(store: try stores.open(backup.destination))
        let (volumes, scratch) = (self.volumes, self.scratch)
        _ = try await jobs.run(kind: "restore", target: "\(backup.url) → \(name)") { progress throws(ConvoyError) in
            try await Self.restoreWork(volumes: volumes, repository: repository, backup: backup, name: name,
                                       options: options, scratch: scratch, progress: progress)
        }
    }

    static func restoreWork(volumes: VolumeService, repository: BackupRepository, backup: BackupURL, name: String,
                            options: [String: String], scratch: String,
                            progress: @escaping ProgressSink) async throws(ConvoyError) -> [String: String] {
        let manifest: Manifest
        do {
            manifest = try await repository.manifest(volume: backup.volume, backup: backup.backupID)
        } catch where error.kind == .notFound {
            let legacy = LegacyConvoyStore(store: repository.store)
            guard let config = try await legacy.backupConfig(volume: backup.volume, backup: backup.backupID) else { throw error }
            return try await restoreLegacy(volumes: volumes, legacy: legacy, config: config, backup: backup, name: name,
                                           options: options, scratch: scratch, progress: progress)
        }
        var options = options
        if options["size"] == nil, manifest.volumeSize > 0 { options["size"] = "\(manifest.volumeSize)" }
        if manifest.kind == .blocks {
            if options["driver"] == nil { options["driver"] = DevicemapperDriver.driverName }
            let record = try await volumes.create(name: name, options: options, mustBeNew: true, receivesImage: true) { driver, volume throws(ConvoyError) in
                guard let blockDriver = driver as? DevicemapperDriver else {
                    throw ConvoyError.invalid("backup \(manifest.id) is a block backup: restore it with the devicemapper driver")
                }
                let device = try await blockDriver.deviceForImage(volume)
                try await BlockRestorer(repository: repository).restore(manifest, onto: device, progress: progress)
                return try await blockDriver.detectFilesystem(volume).map { ["FS": $0] } ?? [:]
            }
            return ["Volume": record.name]
        }
        let record = try await volumes.create(name: name, options: options, mustBeNew: true) { driver, volume throws(ConvoyError) in
            let directory = try directory(of: volume, driver: driver)
            try await FileRestorer(repository: repository).restore(manifest, into: directory, progress: progress)
            return [:]
        }
        return ["Volume": record.name]
    }

    /// A Convoy 0.5 single-file backup: its tar.gz unpacked into the new volume with GNU tar (which refuses
    /// members with `..` and does not follow symlinks it extracted).
    static func restoreLegacy(volumes: VolumeService, legacy: LegacyConvoyStore, config: LegacyConvoyStore.BackupConfig,
                              backup: BackupURL, name: String, options: [String: String], scratch: String,
                              progress: @escaping ProgressSink) async throws(ConvoyError) -> [String: String] {
        if let blocks = config.Blocks, !blocks.isEmpty {
            return try await restoreLegacyBlocks(volumes: volumes, legacy: legacy, blocks: blocks, backup: backup, name: name,
                                                 options: options, progress: progress)
        }
        progress(WorkProgress(phase: "downloading Convoy backup"))
        let archive = try await legacy.singleFileArchive(volume: backup.volume, config: config)
        let scratchStore = try FileObjectStore(root: scratch)
        let key = "legacy-\(backup.backupID).tar.gz"
        try scratchStore.putSync(key, archive)
        defer { try? FileManager.default.removeItem(atPath: scratch + "/" + key) }
        progress(WorkProgress(phase: "unpacking", bytesTotal: UInt64(archive.count)))
        // Generous: unpacking runs at tens of MB/s even on slow disks.
        let timeout = Duration.seconds(120 + archive.count / 5_000_000)
        let record = try await volumes.create(name: name, options: options, mustBeNew: true) { driver, volume throws(ConvoyError) in
            let directory = try directory(of: volume, driver: driver)
            _ = try await ExternalCommand.run("/bin/tar", [
                "-xzf", scratch + "/" + key, "-C", directory, "--same-owner", "--same-permissions", "--numeric-owner",
                "--xattrs", "--no-overwrite-dir",
            ], timeout: timeout)
            return [:]
        }
        progress(WorkProgress(phase: "restored", bytesDone: UInt64(archive.count), bytesTotal: UInt64(archive.count)))
        return ["Volume": record.name]
    }

    /// A Convoy 0.5 devicemapper backup onto a new thin volume: its 2 MiB gzip blocks, each checked against its
    /// SHA-512 name, written at their offsets over a discarded device.
    static func restoreLegacyBlocks(volumes: VolumeService, legacy: LegacyConvoyStore, blocks: [LegacyConvoyStore.BackupConfig.Block],
                                    backup: BackupURL, name: String, options: [String: String],
                                    progress: @escaping ProgressSink) async throws(ConvoyError) -> [String: String] {
        var options = options
        if options["driver"] == nil { options["driver"] = DevicemapperDriver.driverName }
        let recorded = try await legacy.volumeSize(volume: backup.volume)
        let end = blocks.map { UInt64(max(0, $0.Offset)) + (2 << 20) }.max() ?? 0
        if options["size"] == nil { options["size"] = "\(max(recorded, end))" }
        let total = UInt64(blocks.count) * (2 << 20)
        let record = try await volumes.create(name: name, options: options, mustBeNew: true, receivesImage: true) { driver, volume throws(ConvoyError) in
            guard let blockDriver = driver as? DevicemapperDriver else {
                throw ConvoyError.invalid("this Convoy backup of \(backup.volume) is a block (devicemapper) backup: restore it with the devicemapper driver")
            }
            let device = try await blockDriver.deviceForImage(volume)
            let fd = open(device, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw PosixFile.failure("open", device) }
            defer { close(fd) }
            var done: UInt64 = 0
            for block in blocks {
                let data = try await legacy.block(block.BlockChecksum)
                guard block.Offset >= 0, UInt64(block.Offset) + UInt64(data.count) <= (volume.size ?? UInt64.max) else {
                    throw ConvoyError(.driverFailure, "Convoy block \(block.BlockChecksum) lies outside the volume (offset \(block.Offset))")
                }
                try PosixFile.writeAll(fd, data, at: UInt64(block.Offset), path: device)
                done += UInt64(data.count)
                progress(WorkProgress(phase: "restoring Convoy blocks", bytesDone: done, bytesTotal: total))
            }
            guard fsync(fd) == 0 else { throw PosixFile.failure("sync", device) }
            return try await blockDriver.detectFilesystem(volume).map { ["FS": $0] } ?? [:]
        }
        return ["Volume": record.name]
    }

    static func directory(of volume: DriverVolume, driver: any VolumeDriver) throws(ConvoyError) -> String {
        guard let directoryDriver = driver as? any DirectoryBackedDriver else {
            throw ConvoyError.invalid("driver \(driver.name) cannot restore a file backup")
        }
        return try directoryDriver.dataDirectory(of: volume)
    }

    // MARK: Helpers

    private func dataDirectory(_ record: VolumeRecord) throws(ConvoyError) -> String {
        guard let driver = volumes.drivers[record.driver] as? any DirectoryBackedDriver else {
            throw .invalid("volume \(record.name) uses driver \(record.driver), which has no snapshots in this build")
        }
        return try driver.dataDirectory(of: record.driverVolume)
    }

    static func describe(_ manifest: Manifest, location: StoreLocation) -> ClientAPI.Backup {
        ClientAPI.Backup(
            url: BackupURL(destination: location, backupID: manifest.id, volume: manifest.volume).url,
            backupName: manifest.id, volumeName: manifest.volume, snapshotName: manifest.snapshot ?? "",
            createdTime: manifest.createdAt, volumeSize: manifest.volumeSize, size: manifest.stats.bytes,
            files: manifest.stats.files, blocks: manifest.blockHashes.count)
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws(ConvoyError) -> T) async throws(ConvoyError) -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}

/// Names reserved while an operation that creates them runs.
final class NameReservations: Sendable {
    private let names = Mutex<Set<String>>([])

    func reserve(_ name: String) -> Bool { names.withLock { $0.insert(name).inserted } }
    func release(_ name: String) { _ = names.withLock { $0.remove(name) } }
}
