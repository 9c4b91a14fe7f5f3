import ConvoyCore
import Drivers

/// Backups that a driver keeps in its own service (`ebs://<region>/<snap-id>`): every URL of such a driver's
/// scheme goes to it, and its snapshots are never sent to a backup store it could not restore them from.
enum NativeBackups {
    /// The running driver of the URL's scheme; nil for backup-store URLs (`vfs://`, `s3://`). A scheme of a
    /// driver this daemon does not run is refused by name.
    static func driver(for url: String,
                       among drivers: [String: any VolumeDriver]) throws(ConvoyError) -> (any NativeBackupDriver)? {
        let natives = drivers.values.compactMap { $0 as? any NativeBackupDriver }
        if let driver = natives.first(where: { url.hasPrefix($0.backupScheme + "://") }) { return driver }
        if let name = DriverRegistry.nativeBackupDriverName(forURL: url) {
            throw ConvoyError(.unavailable, "'\(url)' is a backup of the \(name) driver: the daemon must run it "
                + "(--drivers ...,\(name))")
        }
        return nil
    }
}

extension BackupService {
    func nativeDriver(for url: String) throws(ConvoyError) -> (any NativeBackupDriver)? {
        try NativeBackups.driver(for: url, among: drivers)
    }

    /// `backup create` of a snapshot a native driver took: its own backup, as a job like the others. Nil when
    /// neither the snapshot nor the destination is a native driver's.
    func createNativeBackup(_ snapshot: ClientAPI.Snapshot,
                            destination: String) async throws(ConvoyError) -> ClientAPI.Job? {
        let info = snapshot.driverInfo ?? [:]
        let owner = drivers[snapshot.keepingDriver ?? ""] as? any NativeBackupDriver
        let target = try nativeDriver(for: destination)
        guard let driver = owner ?? target else { return nil }
        guard let target, target.name == driver.name else {
            throw .invalid("snapshot \(snapshot.name) is a \(driver.name) snapshot: back it up with "
                + "--dest \(driver.backupScheme)://")
        }
        return try await jobs.start(kind: "backup create", target: "\(snapshot.name) → \(destination)") {
            _ throws(ConvoyError) in
            try await driver.createBackup(snapshot: snapshot.name, info: info, destination: destination)
        }
    }
}
