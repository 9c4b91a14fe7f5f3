import Backupstore
import ConvoyCore
import CSIProtocol
import Foundation
import GRPCCore

/// DeleteSnapshot and ListSnapshots. A snapshot id is a backup URL, so a backup made by the CLI (or another
/// daemon) can be handed to the CO as a pre-provisioned snapshot and is found by its id here.
extension CSISnapshots {
    /// Deletes the backup and, for one this daemon made, its local snapshot and record. An id that names no
    /// backup (gone, or not a backup URL at all) succeeds: the CO repeats deletes it is unsure of.
    func delete(id: String) async throws(RPCError) {
        guard !id.isEmpty else { throw CSIErrors.invalid("DeleteSnapshot needs a snapshot id") }
        let record = try recorded(id)
        if let record, record.url == nil, await services.jobs.job(record.job)?.state == .running {
            throw RPCError(code: .aborted, message: "snapshot '\(record.name)' is still being made (job "
                + "\(record.job)); delete it again once it is done")
        }
        if Self.isBackupID(id, drivers: services.volumes.drivers) {
            do {
                _ = try await services.backups.deleteBackup(id)
            } catch where error.kind == .notFound {
                // Already gone.
            } catch {
                throw CSIErrors.status(error)
            }
        }
        if let record { await forget(record) }
    }

    /// One snapshot by id, the snapshots of one volume, or all this daemon made; pages in name order, the token
    /// being the index of the next.
    func list(_ request: Csi_V1_ListSnapshotsRequest) async throws(RPCError) -> Csi_V1_ListSnapshotsResponse {
        var found: [Csi_V1_Snapshot]
        if !request.snapshotID.isEmpty {
            found = try await byID(request.snapshotID).map { [$0] } ?? []
        } else {
            found = try await known()
        }
        if !request.sourceVolumeID.isEmpty { found = found.filter { $0.sourceVolumeID == request.sourceVolumeID } }
        let page = try CSIPage.of(found, startingToken: request.startingToken, maxEntries: request.maxEntries)
        var response = Csi_V1_ListSnapshotsResponse()
        response.entries = page.entries.map { snapshot in
            var entry = Csi_V1_ListSnapshotsResponse.Entry()
            entry.snapshot = snapshot
            return entry
        }
        response.nextToken = page.nextToken
        return response
    }

    /// The record of the snapshot with id `id`, finished or still uploading.
    private func recorded(_ id: String) throws(RPCError) -> CSISnapshotRecord? {
        let all = try CSIErrors.mapped { () throws(ConvoyError) in try services.catalog.store.csiSnapshots() }
        return all.first { $0.url == id || ($0.url == nil && Self.plannedURL(of: $0) == id) }
    }

    /// Whether `id` could name a backup: a backup-store URL or a driver's own service's.
    static func isBackupID(_ id: String, drivers: [String: any VolumeDriver]) -> Bool {
        if (try? BackupURL.parse(id)) != nil { return true }
        return ((try? NativeBackups.driver(for: id, among: drivers)) ?? nil) != nil
    }

    private func byID(_ id: String) async throws(RPCError) -> Csi_V1_Snapshot? {
        if let record = try recorded(id) {
            return try? await current(record)
        }
        guard Self.isBackupID(id, drivers: services.volumes.drivers) else { return nil }
        let backup: ClientAPI.Backup
        do {
            backup = try await services.backups.inspectBackup(id)
        } catch where error.kind == .notFound {
            return nil
        } catch {
            throw CSIErrors.status(error)
        }
        var snapshot = Csi_V1_Snapshot()
        snapshot.snapshotID = id
        snapshot.sourceVolumeID = backup.volumeName
        snapshot.sizeBytes = Int64(clamping: backup.volumeSize)
        if let created = try? Date(backup.createdTime, strategy: .iso8601) {
            snapshot.creationTime = .init(date: created)
        }
        snapshot.readyToUse = true
        return snapshot
    }

    /// The snapshots this daemon made that have an id to show (not failed, and not still being cut where the
    /// destination chooses the id).
    private func known() async throws(RPCError) -> [Csi_V1_Snapshot] {
        let all = try CSIErrors.mapped { () throws(ConvoyError) in try services.catalog.store.csiSnapshots() }
        var result: [Csi_V1_Snapshot] = []
        for record in all {
            if let snapshot = try? await current(record) { result.append(snapshot) }
        }
        return result
    }

    /// A record as the CO sees it, without waiting and without forgetting a failed one (a list changes nothing).
    private func current(_ record: CSISnapshotRecord) async throws(RPCError) -> Csi_V1_Snapshot {
        if let url = record.url { return Self.snapshot(record, id: url, ready: true) }
        let job = await services.jobs.job(record.job)
        if job?.state == .succeeded, let url = job?.result?["URL"] {
            return Self.snapshot(record, id: url, ready: true)
        }
        guard job?.state == .running, let url = Self.plannedURL(of: record) else {
            throw RPCError(code: .unavailable, message: "snapshot '\(record.name)' has no id yet")
        }
        return Self.snapshot(record, id: url, ready: false)
    }
}
