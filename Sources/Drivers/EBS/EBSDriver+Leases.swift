import AWS
import ConvoyCore
import Foundation

/// Mounting under a lease (issue 19): one host at a time mounts an EBS volume. A Mount takes the lease first
/// (refused while another host's is live), force-detaches the volume from a dead host's instance, attaches and
/// mounts it (the filesystem replays its journal); the lease is renewed while the volume is mounted and released
/// when it is unmounted. A host that finds its lease taken is fenced: it stops writing and does not mount the
/// volume again while the other host holds it.
extension EBSDriver {
    public func mountVolume(_ volume: DriverVolume) async throws(ConvoyError) -> String {
        let path = try mountpoint(volume)
        guard !RawBlock.isRaw(volume.driverInfo) else {
            throw ConvoyError(.conflict, "volume \(volume.name) is a raw block volume (made for CSI block access): "
                + "it has no filesystem to mount")
        }
        let id = try Self.volumeID(volume)
        let current = try session.get()
        let displaced = try await leases.take(volume.name, volumeID: id, instance: current.identity.instanceID,
                                              ec2: current.ec2)
        if isMounted(volume) { return path }
        do throws(ConvoyError) {
            if let displaced {
                logger.warning("""
                    ebs lease: detaching volume \(volume.name) (\(id)) from \(displaced.holder) by force, \
                    if it is still attached there
                    """)
            }
            let device = try await attacher().attach(id, takingOver: true)
            var filesystem = volume.driverInfo["FS"] ?? ""
            if filesystem.isEmpty {
                // Found on another host's volume without a recorded filesystem: what the device holds.
                guard let found = await BlockFilesystem.detect(on: device),
                      BlockFilesystem.supported.contains(found) else {
                    throw ConvoyError(.driverFailure, "EBS volume \(id) holds no filesystem the ebs driver mounts "
                        + "(\(BlockFilesystem.supported.sorted().joined(separator: " or ")))")
                }
                filesystem = found
            }
            try await BlockFilesystem.mount(device, filesystem: filesystem, at: path)
        } catch {
            try? await leases.release(volume.name, volumeID: id, ec2: current.ec2)
            throw error
        }
        return path
    }

    /// Unmounts and gives the lease up, so that another host may mount the volume at once.
    public func unmountVolume(_ volume: DriverVolume) async throws(ConvoyError) {
        try await BlockFilesystem.unmount(try mountpoint(volume))
        guard let id = volume.driverInfo["VolumeID"], leases.record(volume.name)?.state == .held else { return }
        try await leases.release(volume.name, volumeID: id, ec2: try session.get().ec2)
    }

    /// Refuses to delete a volume another host holds a live lease on.
    func checkNotLeasedElsewhere(_ volume: DriverVolume) async throws(ConvoyError) {
        guard let id = volume.driverInfo["VolumeID"],
              let found = try await session.get().ec2.volume(id),
              let lease = EBSLease(tags: found.tags), lease.host != leases.host,
              lease.isLive(now: EBSLease.now()) else { return }
        throw .conflict("volume \(volume.name) (EBS volume \(id)) is in use on \(lease.holder) until "
            + "\(lease.expiryText); delete it once it is unmounted there")
    }

    public func status(of volume: DriverVolume) async -> [String: String] {
        var status: [String: String] = [:]
        let record = leases.record(volume.name)
        if let record, record.state == .fenced {
            let since = Date(timeIntervalSince1970: TimeInterval(record.since ?? 0)).formatted(.iso8601)
            status["fenced"] = record.lease.map { "\($0.holder) took this volume over (fenced here since \(since))" }
                ?? "this host's lease ran out unrenewed at \(since); it no longer writes to the volume"
        }
        if let record, record.state == .held, let lease = record.lease {
            // Docker asks for Get often: a lease held here is answered from the record, without asking EC2.
            status["lease"] = "held by this host until \(lease.expiryText)"
        } else if let id = volume.driverInfo["VolumeID"], let ec2 = try? session.get().ec2,
                  let found = try? await ec2.volume(id) {
            if let lease = EBSLease(tags: found.tags), lease.isLive(now: EBSLease.now()) {
                status["lease"] = lease.host == leases.host ? "held by this host until \(lease.expiryText)"
                    : "held by \(lease.holder) until \(lease.expiryText)"
            } else {
                status["lease"] = "held by no host"
            }
        }
        return status
    }

    /// Renews this host's leases every third of their time, for as long as the daemon runs.
    func keepLeases() async {
        let period = Duration.seconds(max(1, leases.ttl / 3))
        while !Task.isCancelled {
            try? await Task.sleep(for: period)
            for (name, record) in leases.held { await renewOrFence(name, record) }
        }
    }

    private func renewOrFence(_ name: String, _ record: EBSLeaseKeeper.Record) async {
        guard let ec2 = try? session.get().ec2 else { return }
        do {
            if try await leases.renew(name, record: record, ec2: ec2) { return }
        } catch {
            // EC2 out of reach: the lease is still this host's until the expiry it last wrote; then another host
            // may take the volume, and this one must stop writing to it.
            guard let expires = record.lease?.expires, EBSLease.now() >= expires else {
                logger.warning("""
                    ebs lease: cannot renew the lease of volume \(name) (\(record.volumeID)): \
                    \(error.message); trying again
                    """)
                return
            }
            try? leases.fence(name, volumeID: record.volumeID, by: nil)
        }
        await stopWriting(name)
    }

    /// A fenced volume still mounted here: made read-only (its superblock, so through every mount of it, a
    /// container's too; refused while a file is open for writing), then unmounted, or at least detached from
    /// the tree when something still holds it.
    private func stopWriting(_ name: String) async {
        guard let path = try? PathGuard.child(of: mountsDirectory, named: name), MountInfo.isMountPoint(path) else {
            return
        }
        var failures: [String] = []
        for arguments in [["/bin/mount", "-o", "remount,ro", path], ["/bin/umount", path], ["/bin/umount", "-l", path]]
        where MountInfo.isMountPoint(path) {
            do {
                _ = try await ExternalCommand.run(arguments[0], Array(arguments.dropFirst()), timeout: .seconds(30))
            } catch {
                failures.append(error.message)
            }
        }
        logger.error("""
            ebs lease: fenced volume \(name) \(MountInfo.isMountPoint(path) ? "is still mounted" : "is unmounted") \
            here\(failures.isEmpty ? "" : " (\(failures.joined(separator: "; ")))")
            """)
    }
}
