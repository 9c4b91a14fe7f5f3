import Backupstore
import ConvoyCore
import Foundation
import Logging

/// Backups: a snapshot sent to a destination (a backup store `vfs://` or `s3://`, or a driver's own service such
/// as `ebs://`), and what is done with backups there: list, inspect, delete, verify. A file snapshot's backup
/// copies the blocks the destination lacks and its manifest; a thin snapshot's backup reads only the blocks that
/// changed since the volume's last backup there (`BlockBackup`); a native driver's snapshot is backed up by the
/// driver (`NativeBackups`). Restores are `RestoreService`'s.
public struct BackupService: Sendable {
    let catalog: SnapshotCatalog
    let jobs: JobManager
    let stores: StoreFactory

    public init(catalog: SnapshotCatalog, jobs: JobManager, stores: StoreFactory) {
        self.catalog = catalog
        self.jobs = jobs
        self.stores = stores
    }

    var drivers: [String: any VolumeDriver] { catalog.drivers }

    /// A destination URL's store, parsed and opened for `use` (refused where this daemon may not use it so).
    func repository(at destination: String, for use: DestinationUse = .existingBackups)
        async throws(ConvoyError) -> (location: StoreLocation, BackupRepository) {
        let location = try StoreLocation.parse(destination)
        return (location, try await stores.repository(location, for: use))
    }

    /// Refuses a destination scheduled runs could not open after a restart: an encrypted store whose password file
    /// the daemon was not given (`--store-password-file URL=FILE`); a key unlocked by a client is lost at a restart.
    /// `forgets`: the policy has retention rules, which an append-only destination cannot follow.
    func checkUnattended(_ destination: String, forgets: Bool) async throws(ConvoyError) {
        guard try nativeDriver(for: destination) == nil else { return }
        let location = try StoreLocation.parse(destination)
        if forgets, stores.appendOnly.contains(location.url) {
            throw .invalid("\(location.url) is append-only on this host (--append-only): a policy there may not "
                + "forget backups (no --keep-* rules); run `backup forget` from a trusted host")
        }
        guard let store = try? stores.open(location, for: .existingBackups),
              (try? await BackupRepository.isEncrypted(store)) == true,
              !stores.keyring.hasPasswordFile(for: location) else { return }
        throw .invalid("\(location.url) is an encrypted store: scheduled backups to it need the daemon started with "
            + "--store-password-file \(location.url)=FILE (a passphrase given by a client is forgotten at a restart)")
    }

    /// Refuses a destination that is not a store URL (or a driver's own, `ebs://`) before a policy keeps it; the
    /// allow-list (`--backup-destinations`) is applied when a backup is written there, as for `backup create`.
    /// `known`: only a destination this daemon has written to or lists (a policy from Docker's create options:
    /// a Docker user must not make the daemon start a store anywhere on the host or in any bucket).
    public func checkDestination(_ destination: String, known: Bool = false) throws(ConvoyError) -> String {
        if try nativeDriver(for: destination) != nil { return destination }
        let location = try StoreLocation.parse(destination)
        if known { _ = try stores.destinations.admit(location, for: .existingBackups) }
        return location.url
    }

    /// `backupID`: the id the backup gets in a backup store (generated when nil), so a caller can name its URL
    /// before it is written (CSI's snapshot ids); a driver's own service chooses its own.
    public func createBackup(snapshot name: String, destination: String,
                             backupID: String? = nil) async throws(ConvoyError) -> ClientAPI.Job {
        let snapshot = try catalog.snapshot(name)
        let backupID = try backupID.map { id throws(ConvoyError) in try ObjectName.validate(id, kind: "backup") }
            ?? ObjectName.generate(prefix: "backup")
        if snapshot.keepingDriver != nil {
            if let job = try await createNativeBackup(snapshot, destination: destination) { return job }
            return try await createBlockBackup(snapshot, destination: destination, backupID: backupID)
        }
        let (location, target) = try await repository(at: destination, for: .newBackup)
        let local = catalog.local
        return try await jobs.start(kind: "backup create", target: "\(name) → \(location.url)") {
            progress throws(ConvoyError) in
            let manifest = try await local.manifest(volume: snapshot.volumeName, backup: snapshot.name)
            let copied = try await BackupCopier(source: local, destination: target).copy(manifest, as: backupID,
                                                                                          progress: progress)
            let url = BackupURL(destination: location, backupID: backupID, volume: snapshot.volumeName)
            return ["URL": url.url, "Bytes": "\(copied.stats.bytes)", "BytesRead": "\(manifest.stats.bytesRead)",
                    "NewBlocks": "\(copied.stats.newBlocks)", "BytesStored": "\(copied.stats.newBytesStored)"]
        }
    }

    public func listBackups(destination: String, volume: String?) async throws(ConvoyError) -> [ClientAPI.Backup] {
        if let native = try nativeDriver(for: destination) {
            if let volume { try ObjectName.validate(volume) }
            return try await native.listBackups(destination: destination, volume: volume)
        }
        if let volume { try ObjectName.validate(volume) }
        let (location, repository) = try await repository(at: destination, for: .existingBackups)
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
        let repository = try await stores.repository(backup.destination, for: .existingBackups)
        return Self.describe(try await repository.manifest(volume: backup.volume, backup: backup.backupID),
                             location: backup.destination)
    }

    /// Deletes a backup's manifest, then collects unreferenced blocks (deferred when another writer holds the
    /// store).
    public func deleteBackup(_ url: String) async throws(ConvoyError) -> [String: String] {
        if let native = try nativeDriver(for: url) { return try await native.deleteBackup(url) }
        let backup = try BackupURL.parse(url)
        let repository = try await stores.repository(backup.destination, for: .existingBackups)
        _ = try await repository.manifest(volume: backup.volume, backup: backup.backupID)
        try await repository.deleteManifest(volume: backup.volume, backup: backup.backupID)
        Failpoint.reach("backup-manifest-deleted")
        let result = try await GarbageCollector(repository: repository).collect()
        var answer = Self.describe(result)
        answer["Deleted"] = backup.url
        if let reason = result.deferredBecause { answer["CollectionDeferred"] = reason }
        // Kept, since their blocks may be in use: the user should know the store needs attention.
        if !result.packsWithDamagedIndex.isEmpty {
            answer["PacksWithDamagedIndex"] = result.packsWithDamagedIndex.joined(separator: "; ")
        }
        return answer
    }

    public func verifyBackup(_ url: String) async throws(ConvoyError) -> ClientAPI.Job {
        if let native = try nativeDriver(for: url) {
            throw .invalid("'\(url)' is kept by the \(native.name) driver's own service, which checks it; only "
                + "backup-store backups are verified")
        }
        let backup = try BackupURL.parse(url)
        let repository = try await stores.repository(backup.destination, for: .existingBackups)
        return try await jobs.start(kind: "backup verify", target: backup.url) { progress throws(ConvoyError) in
            let manifest = try await repository.manifest(volume: backup.volume, backup: backup.backupID)
            let problems = try await BackupVerifier(repository: repository).verify(manifest, progress: progress)
            var result = ["Blocks": "\(manifest.blockHashes.count)", "Problems": "\(problems.count)"]
            for (index, problem) in problems.enumerated() {
                result["Problem\(index + 1)"] = "\(problem.kind.rawValue) block \(problem.block) "
                    + "(used by \(problem.path))"
            }
            return result
        }
    }

    /// Every backup of a destination checked, and a subset of its blocks read (`StoreVerifier`), as a job.
    public func verifyStore(_ request: ClientAPI.VerifyStoreRequest) async throws(ConvoyError) -> ClientAPI.Job {
        if let native = try nativeDriver(for: request.destination) {
            throw .invalid("'\(request.destination)' is kept by the \(native.name) driver's own service, which checks "
                + "it; only backup stores are verified")
        }
        let subset = try request.readDataSubset.map { text throws(ConvoyError) in try StoreVerifier.Subset.parse(text) }
            ?? .none
        let (location, repository) = try await repository(at: request.destination, for: .existingBackups)
        return try await jobs.start(kind: "store verify", target: location.url) { progress throws(ConvoyError) in
            let report = try await StoreVerifier(repository: repository).verify(subset, progress: progress)
            var result = ["Backups": "\(report.backups)", "Blocks": "\(report.blocksReferenced)",
                          "BlocksRead": "\(report.blocksRead)", "BytesRead": "\(report.bytesRead)",
                          "Problems": "\(report.problems.count)"]
            for (index, problem) in report.problems.enumerated() {
                result["Problem\(index + 1)"] = problem.block.isEmpty ? problem.detail
                    : "\(problem.kind.rawValue) block \(problem.block) (used by \(problem.path))"
            }
            return result
        }
    }

    /// A collection's figures, as `backup delete` and `backup forget` answer them.
    static func describe(_ result: GarbageCollector.Result) -> [String: String] {
        ["BlocksFreed": "\(result.blocksDeleted)", "PacksDeleted": "\(result.packsDeleted)",
         "PacksRewritten": "\(result.packsRewritten)", "PacksMerged": "\(result.packsMerged)",
         "DeadBytesKept": "\(result.deadBytesKept)"]
    }

    static func describe(_ manifest: Manifest, location: StoreLocation) -> ClientAPI.Backup {
        ClientAPI.Backup(
            url: BackupURL(destination: location, backupID: manifest.id, volume: manifest.volume).url,
            backupName: manifest.id, volumeName: manifest.volume, snapshotName: manifest.snapshot ?? "",
            createdTime: manifest.createdAt, volumeSize: manifest.volumeSize, size: manifest.stats.bytes,
            files: manifest.stats.files, blocks: manifest.blockHashes.count, host: manifest.host)
    }
}
