import AWS
import ConvoyCore

/// Snapshots are EBS snapshots, taken after the filesystem's data reached the disk (`sync`, and `fsfreeze` around
/// CreateSnapshot with `ebs.fsfreeze`). A backup is such a snapshot, completed and tagged `convoy-backup`: deleting
/// the convoy snapshot then leaves it, and `backup delete` removes it.
extension EBSDriver {
    static let backupTag = "convoy-backup"

    public func createSnapshot(_ name: String, of volume: DriverVolume) async throws(ConvoyError) -> [String: String] {
        let id = try Self.volumeID(volume)
        let current = try session.get()
        let path = try mountpoint(volume)
        let mounted = isMounted(volume)
        if mounted { _ = try await ExternalCommand.run("/bin/sync", ["-f", path], timeout: .seconds(300)) }
        let freeze = mounted && configuration.fsFreeze
        if freeze { _ = try await ExternalCommand.run("/sbin/fsfreeze", ["-f", path], timeout: .seconds(60)) }
        let result: Result<EC2Snapshot, ConvoyError>
        do {
            result = .success(try await current.ec2.createSnapshot(
                volumeID: id, description: "convoy snapshot \(name) of volume \(volume.name)",
                tags: ["Name": name, "convoy-snapshot": name, "convoy-volume": volume.name]))
        } catch {
            result = .failure(error)
        }
        // EBS snapshots are point-in-time when CreateSnapshot answers: the filesystem can go on at once.
        if freeze { _ = try await ExternalCommand.run("/sbin/fsfreeze", ["-u", path], timeout: .seconds(60)) }
        let snapshot = try result.get()
        return ["SnapshotID": snapshot.id, "VolumeID": id, "Region": current.identity.region,
                "Size": volume.driverInfo["Size"] ?? "\(snapshot.volumeSizeGiB << 30)"]
    }

    /// Deletes the EBS snapshot unless it became a backup.
    public func deleteSnapshot(_ name: String, info: [String: String],
                               of volume: DriverVolume) async throws(ConvoyError) {
        guard let id = info["SnapshotID"], let snapshot = try await session.get().ec2.snapshot(id) else { return }
        guard snapshot.tags[Self.backupTag] != "true" else { return }
        try await deleteEBSSnapshot(id)
    }

    private func deleteEBSSnapshot(_ id: String) async throws(ConvoyError) {
        do {
            try await session.get().ec2.deleteSnapshot(id)
        } catch where error.kind == .notFound {
            // Gone already.
        }
    }

    // MARK: Backups

    /// Waits for the snapshot to complete (EBS copies the data in the background), then tags it as a backup.
    public func createBackup(snapshot name: String, info: [String: String],
                             destination: String) async throws(ConvoyError) -> [String: String] {
        let current = try session.get()
        try checkRegion(try EBSBackupURL.destinationRegion(destination), of: destination)
        guard let id = info["SnapshotID"] else {
            throw ConvoyError(.stateFailure, "snapshot \(name) has no EBS snapshot id in its record")
        }
        let gib = UInt64(info["Size"] ?? "").map { $0 >> 30 } ?? 0
        let completed = try await EBSWait.until(
            "EBS snapshot \(id) completing", timeout: .seconds(600) + .seconds(Int(min(gib, 16384)) * 10)
        ) { () async throws(ConvoyError) -> EC2Snapshot? in
            guard let snapshot = try await current.ec2.snapshot(id) else {
                throw .notFound("EBS snapshot \(id) of snapshot \(name) no longer exists")
            }
            if snapshot.state == "error" {
                throw ConvoyError(.driverFailure, "EBS snapshot \(id) failed (state error)")
            }
            return snapshot.state == "completed" ? snapshot : nil
        }
        try await current.ec2.createTags([id], [Self.backupTag: "true"])
        let url = EBSBackupURL(region: current.identity.region, snapshotID: completed.id)
        return ["URL": url.url, "SnapshotID": completed.id]
    }

    /// Only snapshots tagged as convoy backups (never every snapshot of the account).
    public func listBackups(destination: String, volume: String?) async throws(ConvoyError) -> [ClientAPI.Backup] {
        try checkRegion(try EBSBackupURL.destinationRegion(destination), of: destination)
        var filters = ["tag:\(Self.backupTag)": ["true"]]
        if let volume { filters["tag:convoy-volume"] = [volume] }
        return try await session.get().ec2.describeSnapshots(filters: filters).map(describe)
            .sorted { ($0.createdTime, $0.backupName) < ($1.createdTime, $1.backupName) }
    }

    public func inspectBackup(_ url: String) async throws(ConvoyError) -> ClientAPI.Backup {
        describe(try await backupSnapshot(url))
    }

    public func deleteBackup(_ url: String) async throws(ConvoyError) -> [String: String] {
        let snapshot = try await backupSnapshot(url)
        guard snapshot.tags[Self.backupTag] == "true" else {
            throw .invalid("EBS snapshot \(snapshot.id) is not a convoy backup; "
                + "delete it with the AWS tools if you mean to")
        }
        try await deleteEBSSnapshot(snapshot.id)
        return ["Deleted": url]
    }

    public func restoreOptions(_ url: String) throws(ConvoyError) -> [String: String] {
        let backup = try EBSBackupURL.parse(url)
        try checkRegion(backup.region, of: url)
        return ["snapshot": backup.snapshotID]
    }

    private func backupSnapshot(_ url: String) async throws(ConvoyError) -> EC2Snapshot {
        let backup = try EBSBackupURL.parse(url)
        try checkRegion(backup.region, of: url)
        guard let snapshot = try await session.get().ec2.snapshot(backup.snapshotID) else {
            throw .notFound("no EBS snapshot \(backup.snapshotID) in \(backup.region)")
        }
        return snapshot
    }

    /// One region per daemon: EBS snapshots of another region must be copied here first (`aws ec2 copy-snapshot`).
    private func checkRegion(_ region: String?, of text: String) throws(ConvoyError) {
        let own = try session.get().identity.region
        guard let region, region != own else { return }
        throw .invalid("'\(text)' is in region \(region); "
            + "this daemon's ebs driver works in \(own) (copy the snapshot here first)")
    }

    private func describe(_ snapshot: EC2Snapshot) -> ClientAPI.Backup {
        let region = (try? session.get().identity.region) ?? ""
        return ClientAPI.Backup(
            url: EBSBackupURL(region: region, snapshotID: snapshot.id).url, backupName: snapshot.id,
            volumeName: snapshot.tags["convoy-volume"] ?? "", snapshotName: snapshot.tags["convoy-snapshot"] ?? "",
            createdTime: snapshot.startTime, volumeSize: snapshot.volumeSizeGiB << 30,
            size: snapshot.volumeSizeGiB << 30, files: 0, blocks: 0)
    }
}
