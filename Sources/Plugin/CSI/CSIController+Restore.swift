import Backupstore
import ConvoyCore
import CSIProtocol
import GRPCCore

/// CreateVolume with a content source: a volume restored from a snapshot (a backup URL), in full or lazily
/// (`lazy: "true"`: usable at once, its data fetched on first read while it hydrates), or a clone of another
/// volume (`VolumeCloner`). A full restore or a clone longer than a CO's call answers ABORTED until it is done;
/// the CO's repeats find it running or finished.
extension CSIController {
    /// How long a CreateVolume waits for a full restore or a clone before telling the CO to ask again.
    static let restoreAnswerWithin: Duration = .seconds(8)

    var cloner: VolumeCloner {
        VolumeCloner(volumes: services.volumes, snapshots: services.snapshots, catalog: services.catalog,
                     planner: services.restores.planner, jobs: services.jobs)
    }

    func restore(_ name: String, from source: Csi_V1_VolumeContentSource, options: [String: String],
                 lazy: Bool) async throws(RPCError) -> VolumeRecord {
        let origin: String
        let madeFrom: String
        switch source.type {
        case .snapshot(let snapshot)?:
            origin = snapshot.snapshotID
            madeFrom = (try? BackupURL.parse(origin).url) ?? origin
        case .volume(let volume)?:
            origin = "volume \(volume.volumeID)"
            madeFrom = VolumeRecord.cloneOrigin(volume.volumeID)
        case nil: throw CSIErrors.invalid("volume_content_source names neither a snapshot nor a volume")
        }
        if let existing = try? volumes.get(name) {
            guard existing.state == .ready else {
                throw RPCError(code: .aborted, message: "volume \(name) is being \(existing.state.participle); "
                    + "try again")
            }
            // Volumes made before their origin was recorded (or by Docker without one) are taken as they are.
            if let recorded = existing.driverInfo[VolumeRecord.madeFromKey], recorded != madeFrom {
                throw RPCError(code: .alreadyExists, message: "volume \(name) exists, made from \(recorded), not "
                    + "from \(origin)")
            }
            return existing
        }
        guard restoring.reserve(name) else {
            throw RPCError(code: .aborted, message: "volume \(name) is being made from \(origin); try again")
        }
        var reserved = true
        defer { if reserved { restoring.release(name) } }
        let job: ClientAPI.Job
        if case .volume(let volume)? = source.type {
            job = try await startClone(of: volume.volumeID, into: name, options: options, lazy: lazy)
        } else {
            try await checkSnapshot(origin)
            if lazy {
                return try await CSIErrors.creating { () throws(ConvoyError) in
                    try await services.lazy.create(name: name, backup: origin, options: options)
                }
            }
            job = try await CSIErrors.creating { () throws(ConvoyError) in
                try await services.restores.restore(name: name, backup: origin, options: options, wait: false)
            }
        }
        // The reservation lasts as long as the job, not this call: the CO may give up on the call first.
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
            throw RPCError(code: .aborted, message: "volume \(name) is being made from \(origin) (job \(job.id)); "
                + "try again")
        case .failed, .interrupted, nil:
            throw RPCError(code: .internalError, message: "making volume \(name) from \(origin) failed: "
                + (ended?.error ?? "its job \(job.id) is gone"))
        }
    }

    private func checkSnapshot(_ url: String) async throws(RPCError) {
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
    }

    /// A clone: the source must exist (NOT_FOUND) and fit the requested size (OUT_OF_RANGE); clones are made
    /// in full.
    private func startClone(of source: String, into name: String, options: [String: String],
                            lazy: Bool) async throws(RPCError) -> ClientAPI.Job {
        guard !lazy else {
            throw CSIErrors.invalid("the parameter lazy applies to restores from snapshots; a clone is made in full")
        }
        guard let record = try? volumes.get(source), record.state == .ready else {
            throw RPCError(code: .notFound, message: "no volume '\(source)' to clone")
        }
        if let asked = options["size"].flatMap(UInt64.init), asked < record.size {
            throw RPCError(code: .outOfRange, message: "volume \(source) holds \(record.size) bytes: a clone of it "
                + "cannot have \(asked)")
        }
        return try await CSIErrors.creating { () throws(ConvoyError) in
            try await cloner.clone(source, into: name, options: options)
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
