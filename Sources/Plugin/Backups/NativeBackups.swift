import ConvoyCore
import Drivers

/// Backups that a driver keeps in its own service (`ebs://<region>/<snap-id>`): BackupService hands every URL of
/// such a driver's scheme to it, and refuses to send its snapshots to a backup store it cannot read them into.
extension BackupService {
    /// The driver of the URL's scheme; nil for backup-store URLs (`vfs://`, `s3://`). A scheme of a driver this
    /// daemon does not run is refused by name.
    func nativeDriver(for url: String) throws(ConvoyError) -> (any NativeBackupDriver)? {
        let natives = volumes.drivers.values.compactMap { $0 as? any NativeBackupDriver }
        if let driver = natives.first(where: { url.hasPrefix($0.backupScheme + "://") }) { return driver }
        if url.hasPrefix("ebs://") {
            throw ConvoyError(.unavailable, "'\(url)' is an EBS backup: the daemon must run the ebs driver (--drivers ...,ebs)")
        }
        return nil
    }

    /// `backup create` of a snapshot a native driver took: its own backup, as a job like the others.
    func createNativeBackup(_ snapshot: ClientAPI.Snapshot, info: [String: String],
                            destination: String) async throws(ConvoyError) -> ClientAPI.Job? {
        let owner = volumes.drivers[info["Driver"] ?? ""] as? any NativeBackupDriver
        let target = try nativeDriver(for: destination)
        guard let driver = owner ?? target else { return nil }
        guard let target, target.name == driver.name else {
            throw .invalid("snapshot \(snapshot.name) is a \(driver.name) snapshot: back it up with --dest \(driver.backupScheme)://")
        }
        return try await jobs.start(kind: "backup create", target: "\(snapshot.name) → \(destination)") { _ throws(ConvoyError) in
            try await driver.createBackup(snapshot: snapshot.name, info: info, destination: destination)
        }
    }

    /// A new volume of the backup's driver, made from the backup by the driver itself.
    static func restoreNative(volumes: VolumeService, driver: any NativeBackupDriver, url: String, name: String,
                              options: [String: String]) async throws(ConvoyError) -> [String: String] {
        var options = options.merging(try driver.restoreOptions(url)) { _, own in own }
        if let named = options["driver"], named != driver.name {
            throw .invalid("'\(url)' is a \(driver.name) backup: it restores only with the \(driver.name) driver")
        }
        options["driver"] = driver.name
        let record = try await volumes.create(name: name, options: options, mustBeNew: true)
        return ["Volume": record.name]
    }
}
