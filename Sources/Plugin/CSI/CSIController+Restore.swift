import ConvoyCore
import CSIProtocol
import GRPCCore

/// CreateVolume with a content source: a volume restored from a snapshot (a backup URL), in full or lazily
/// (`lazy: "true"`: usable at once, its data fetched on first read while it hydrates). A full restore longer
/// than a CO's call answers ABORTED until it is done; the CO's repeats find it running or finished.
extension CSIController {
    /// How long a CreateVolume waits for a full restore before telling the CO to ask again.
    static let restoreAnswerWithin: Duration = .seconds(8)

    func restore(_ name: String, from source: Csi_V1_VolumeContentSource, options: [String: String],
                 lazy: Bool) async throws(RPCError) -> VolumeRecord {
        guard case .snapshot(let snapshot)? = source.type else {
            throw CSIErrors.invalid("convoy does not clone volumes: snapshot the volume and create from that "
                + "snapshot")
        }
        let url = snapshot.snapshotID
        if let existing = try? volumes.get(name) {
            guard existing.state == .ready else {
                throw RPCError(code: .aborted, message: "volume \(name) is being \(existing.state.rawValue); "
                    + "try again")
            }
            return existing
        }
        guard restoring.reserve(name) else {
            throw RPCError(code: .aborted, message: "volume \(name) is being restored from \(url); try again")
        }
        var reserved = true
        defer { if reserved { restoring.release(name) } }
        guard CSISnapshots.isBackupID(url, drivers: volumes.drivers) else {
            throw RPCError(code: .notFound, message: "no snapshot with id '\(url)'")
        }
        do {
            _ = try await services.backups.inspectBackup(url)
        } catch where error.kind == .notFound {
            throw RPCError(code: .notFound, message: "no snapshot with id '\(url)': \(error.message)")
        } catch {
            throw CSIErrors.status(error)
        }
        if lazy {
            return try await CSIErrors.mapping { () throws(ConvoyError) in
                try await services.lazy.create(name: name, backup: url, options: options)
            }
        }
        let job = try await CSIErrors.mapping { () throws(ConvoyError) in
            try await services.restores.restore(name: name, backup: url, options: options, wait: false)
        }
        // The reservation lasts as long as the restore, not this call: the CO may give up on the call first.
        reserved = false
        let (jobs, restoring) = (services.jobs, self.restoring)
        Task.detached {
            _ = try? await jobs.wait(for: job.id)
            restoring.release(name)
        }
        let ended = await jobs.waitForEnd(job.id, upTo: Self.restoreAnswerWithin)
        switch ended?.state {
        case .succeeded:
            return try CSIErrors.existing(name, in: volumes)
        case .running:
            throw RPCError(code: .aborted, message: "volume \(name) is being restored from \(url) (job \(job.id)); "
                + "try again")
        case .failed, .interrupted, nil:
            throw RPCError(code: .internalError, message: "restoring volume \(name) from \(url) failed: "
                + (ended?.error ?? "its job \(job.id) is gone"))
        }
    }

    static func flag(_ value: String?, name: String) throws(RPCError) -> Bool {
        switch value?.lowercased() {
        case nil, "false": return false
        case "true": return true
        case let other?: throw CSIErrors.invalid("parameter \(name): '\(other)' is not true or false")
        }
    }
}
