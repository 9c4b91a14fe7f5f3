import Backupstore
import ConvoyCore
import CSIProtocol
import Foundation
import GRPCCore

/// CSI snapshots are convoy backups, so they outlive the node: the snapshot id is the backup's URL. A
/// CreateSnapshot cuts a local snapshot of the volume and uploads it to the destination (the snapshot class's
/// `dest` parameter, else `--csi-snapshot-dest`) as one job; the CO sees `ready_to_use` false while it uploads and
/// repeats the call (same name) until it is true. The CO's names live in the state (`CSISnapshotRecord`), so
/// repeats are idempotent across restarts.
struct CSISnapshots: Sendable {
    let services: Services
    /// `--csi-snapshot-dest`: where snapshots go when the class names no `dest`.
    let defaultDestination: String?
    /// Names a CreateSnapshot is working on, so two calls for one name never act on its record at once.
    let starting = NameReservations()

    static let parameterKeys: Set<String> = ["dest"]
    /// The CSI spec's limit for an identifier; a backup URL longer than this is refused rather than sent.
    static let maxIDBytes = 128
    /// How long a CreateSnapshot waits for a small volume's snapshot to finish before answering "not ready yet".
    static let answerWithin: Duration = .seconds(5)

    private var store: StateStore { services.catalog.store }

    func create(name: String, source: String, parameters: [String: String]) async throws(RPCError) -> Csi_V1_Snapshot {
        guard !name.isEmpty else { throw CSIErrors.invalid("CreateSnapshot needs a name") }
        guard !source.isEmpty else { throw CSIErrors.invalid("CreateSnapshot needs a source volume id") }
        let parameters = try CSIParameters.own(parameters, allowed: Self.parameterKeys, call: "CreateSnapshot")
        // One call per name at a time, from its first look at the record to its answer: a repeat that finds a
        // failed record must not forget the one another call has just made.
        guard starting.reserve(name) else {
            throw RPCError(code: .aborted, message: "a CreateSnapshot for '\(name)' is in flight; try again")
        }
        defer { starting.release(name) }
        if let existing = try CSIErrors.mapped({ () throws(ConvoyError) in try store.csiSnapshot(named: name) }) {
            guard existing.sourceVolume == source else {
                throw RPCError(code: .alreadyExists, message: "snapshot '\(name)' exists and was cut from volume "
                    + "\(existing.sourceVolume), not \(source)")
            }
            let state = await services.jobs.job(existing.job)?.state
            if existing.url != nil || state == .running || state == .succeeded {
                return try await answer(existing, waitingUpTo: Self.answerWithin)
            }
            if let adopted = await adoptWritten(existing) { return adopted }
            // Failed, or cut short by a restart: the CO asks again, so it is made anew.
            await forget(existing)
        }
        let volume = try CSIErrors.existing(source, in: services.volumes)
        guard let destination = parameters["dest"] ?? defaultDestination else {
            throw RPCError(code: .invalidArgument, message: "no destination for snapshots: give the snapshot class "
                + "the parameter 'dest' (a backup URL such as s3://bucket@region/path) or start the daemon with "
                + "--csi-snapshot-dest")
        }
        let backupID = ObjectName.generate(prefix: "backup")
        if try CSIErrors.mapped({ () throws(ConvoyError) in
            try NativeBackups.driver(for: destination, among: services.volumes.drivers)
        }) == nil {
            _ = try await CSIErrors.mapping { () async throws(ConvoyError) in
                try await services.backups.repository(at: destination, for: .newBackup)
            }
        }
        var record = CSISnapshotRecord(name: name, sourceVolume: source, destination: destination,
                                       backupID: backupID, localSnapshot: ObjectName.generate(prefix: "csi-snapshot"),
                                       job: "", createdAt: Date(), size: volume.size, url: nil)
        if let url = Self.plannedURL(of: record), url.utf8.count > Self.maxIDBytes {
            throw CSIErrors.invalid("the snapshot id would be '\(url)', longer than CSI's \(Self.maxIDBytes) bytes: "
                + "give a shorter destination")
        }
        record.job = try await CSIErrors.mapping { () throws(ConvoyError) in try await startJob(record).id }
        try CSIErrors.mapped { () throws(ConvoyError) in try store.insertCSISnapshot(record) }
        return try await answer(record, waitingUpTo: Self.answerWithin)
    }

    /// Cut, then upload; the URL is recorded once the backup is whole.
    private func startJob(_ record: CSISnapshotRecord) async throws(ConvoyError) -> ClientAPI.Job {
        let (snapshots, backups, jobs, store) = (services.snapshots, services.backups, services.jobs, self.store)
        let target = "\(record.sourceVolume) → \(record.destination)"
        return try await services.jobs.start(kind: "csi snapshot", target: target) {
            _ throws(ConvoyError) in
            let cut = try await snapshots.createSnapshot(volume: record.sourceVolume, snapshot: record.localSnapshot)
            _ = try await jobs.wait(for: cut.id)
            Failpoint.reach("csi-snapshot-cut")
            let upload = try await backups.createBackup(snapshot: record.localSnapshot,
                                                        destination: record.destination, backupID: record.backupID)
            guard let url = try await jobs.wait(for: upload.id).result?["URL"] else {
                throw ConvoyError(.internalFailure, "backup job \(upload.id) ended without a URL")
            }
            try store.setCSISnapshotURL(url, of: record.name)
            return ["URL": url, "Snapshot": record.name]
        }
    }

    /// The snapshot as the CO sees it now: ready once its backup is written; not ready while it uploads; ABORTED
    /// while it is being cut (no id to give yet where the destination chooses it); a failed one is forgotten, so
    /// the CO's next call starts it anew.
    private func answer(_ record: CSISnapshotRecord, waitingUpTo wait: Duration) async throws(RPCError)
        -> Csi_V1_Snapshot {
        if let url = record.url { return Self.snapshot(record, id: url, ready: true) }
        let job = await services.jobs.waitForEnd(record.job, upTo: wait)
        switch job?.state {
        case .succeeded:
            guard let url = job?.result?["URL"] else { break }
            return Self.snapshot(record, id: url, ready: true)
        case .running:
            let cut = (try? store.snapshot(named: record.localSnapshot)) != nil
            guard cut, let url = Self.plannedURL(of: record) else {
                throw RPCError(code: .aborted, message: "snapshot '\(record.name)' is still being cut from volume "
                    + "\(record.sourceVolume) (job \(record.job)); try again")
            }
            return Self.snapshot(record, id: url, ready: false)
        case .failed, .interrupted, nil:
            break
        }
        await forget(record)
        throw RPCError(code: .internalError, message: "snapshot '\(record.name)' of volume \(record.sourceVolume) "
            + "failed: \(job?.error ?? "its job \(record.job) is gone"); asking again starts it anew")
    }

    /// A snapshot whose job ended without recording its URL (a crash after the backup was written): the backup
    /// is whole if its manifest is there, and is then the snapshot.
    private func adoptWritten(_ record: CSISnapshotRecord) async -> Csi_V1_Snapshot? {
        guard let url = Self.plannedURL(of: record), (try? await services.backups.inspectBackup(url)) != nil,
              (try? store.setCSISnapshotURL(url, of: record.name)) != nil else { return nil }
        return Self.snapshot(record, id: url, ready: true)
    }

    /// Drops a CSI snapshot's record and its local snapshot (its backup, if any, is the caller's).
    func forget(_ record: CSISnapshotRecord) async {
        try? await services.catalog.delete(record.localSnapshot)
        try? store.deleteCSISnapshot(record.name)
    }

    /// The URL a store backup gets (its id is chosen here); nil for a driver's own service, which names it.
    static func plannedURL(of record: CSISnapshotRecord) -> String? {
        guard let location = try? StoreLocation.parse(record.destination) else { return nil }
        return BackupURL(destination: location, backupID: record.backupID, volume: record.sourceVolume).url
    }

    static func snapshot(_ record: CSISnapshotRecord, id: String, ready: Bool) -> Csi_V1_Snapshot {
        var snapshot = Csi_V1_Snapshot()
        snapshot.snapshotID = id
        snapshot.sourceVolumeID = record.sourceVolume
        snapshot.sizeBytes = Int64(clamping: record.size)
        snapshot.creationTime = .init(date: record.createdAt)
        snapshot.readyToUse = ready
        return snapshot
    }
}
