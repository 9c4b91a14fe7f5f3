import AWS
import ConvoyCore

/// CSI's ControllerPublish for EBS volumes (issue 20): a volume attached to the instance of the host a CO names,
/// by whichever host's convoy the CO asks. A host is found by the tag its convoy puts on its instance at start
/// (`convoy-host`: a CSI node id is a host id), a volume by its record or its name tag. The lease decides as it
/// does for a mount: refused while another host's lease is live; a dead host's (ran out, never released) is
/// force-detached and its lease removed, so that host finds itself fenced if it comes back; an attachment no
/// host holds is detached and waited for. The node still takes the lease when it stages the volume.
extension EBSDriver: AttachingDriver {
    /// On an instance: the id of the convoy host running there.
    static let hostTag = "convoy-host"

    /// Puts this host's id on its instance, so a controller can attach volumes to it. Only ControllerPublish
    /// needs it: a failure (no ec2:CreateTags on instances) is logged, and the driver works on.
    func tagInstance() async {
        guard let current = try? session.get() else { return }
        do {
            try await current.ec2.createTags([current.identity.instanceID], [Self.hostTag: leases.host])
        } catch {
            logger.warning("""
                ebs: cannot tag instance \(current.identity.instanceID) with \(Self.hostTag)=\(leases.host) \
                (CSI controllers attach volumes to this host by that tag): \(error.message)
                """)
        }
    }

    public func attach(_ name: String, driverInfo: [String: String]?,
                       toHost host: String) async throws(ConvoyError) -> [String: String]? {
        let ec2 = try session.get().ec2
        let instance = try await instance(ofHost: host, ec2: ec2)
        guard let volume = try await ebsVolume(name, driverInfo: driverInfo, zone: instance.availabilityZone,
                                               ec2: ec2) else { return nil }
        guard volume.availabilityZone == instance.availabilityZone else {
            throw .conflict("volume \(name) is EBS volume \(volume.id) in \(volume.availabilityZone); host \(host)'s "
                + "instance \(instance.id) is in \(instance.availabilityZone), and EBS attaches in one zone only")
        }
        let lease = EBSLease(tags: volume.tags)
        let others: EBSAttacher.Others
        switch EBSLease.decide(current: lease, host: host, now: EBSLease.now()) {
        case .refuse(let other):
            throw .conflict("volume \(name) (EBS volume \(volume.id)) is in use on \(other.holder) until "
                + "\(other.expiryText); it can be attached to host \(host) once unstaged there or once that "
                + "lease has run out")
        case .take(let displaced):
            others = displaced == nil ? .detach : .forceDetach
            if let displaced {
                logger.warning("""
                    ebs: attaching volume \(name) (\(volume.id)) to host \(host) detaches it by force from \
                    \(displaced.holder), whose lease ran out at \(displaced.expiryText)
                    """)
            }
        }
        let device = try await attacher(for: instance.id).attachToInstance(volume.id, others: others)
        if others == .forceDetach { try await ec2.deleteTags([volume.id], keys: EBSLease.tagKeys) }
        return ["ebsVolumeID": volume.id, "deviceName": device]
    }

    public func detach(_ name: String, driverInfo: [String: String]?,
                       fromHost host: String?) async throws(ConvoyError) {
        let ec2 = try session.get().ec2
        var instance: EC2Instance?
        if let host {
            do {
                instance = try await self.instance(ofHost: host, ec2: ec2)
            } catch where error.kind == .notFound {
                return // No instance of that host: nothing is attached there.
            }
        }
        guard let volume = try await ebsVolume(name, driverInfo: driverInfo, zone: instance?.availabilityZone ?? "",
                                               ec2: ec2) else { return }
        let attached = volume.attachments.filter { attachment in
            attachment.state != "detached" && (instance.map { $0.id == attachment.instanceID } ?? true)
        }
        guard !attached.isEmpty else { return }
        let lease = EBSLease(tags: volume.tags)
        if let lease, host == nil || lease.host == host, lease.isLive(now: EBSLease.now()) {
            throw .conflict("volume \(name) (EBS volume \(volume.id)) is still in use on \(lease.holder): its lease "
                + "runs until \(lease.expiryText), renewed while it is staged there. Unstage it there first; a "
                + "dead host's lease runs out by itself")
        }
        // Its host died with the volume staged: it will not let the volume go, so EC2 is told to take it.
        let force = lease != nil && (host == nil || lease?.host == host)
        for attachment in attached {
            try await attacher(for: attachment.instanceID).detach(volume.id, from: attachment.instanceID, force: force)
        }
        if force { try await ec2.deleteTags([volume.id], keys: EBSLease.tagKeys) }
    }

    /// The EBS volume of that name in this instance's zone (the only ones it can attach).
    public func madeElsewhere(_ name: String) async throws(ConvoyError)
        -> (driverInfo: [String: String], size: UInt64)? {
        let current = try session.get()
        guard let found = try await volumeNamed(name, zone: current.identity.availabilityZone, ec2: current.ec2) else {
            return nil
        }
        return (Self.driverInfo(of: found), found.sizeGiB << 30)
    }

    /// The one live instance whose convoy runs as host `host`.
    private func instance(ofHost host: String, ec2: EC2Client) async throws(ConvoyError) -> EC2Instance {
        let found = try await ec2.describeInstances(filters: ["tag:" + Self.hostTag: [host]]).filter {
            !["shutting-down", "terminated"].contains($0.state)
        }
        guard let instance = found.first else {
            throw .notFound("node \(host): no EC2 instance carries tag \(Self.hostTag)=\(host) (a convoy with the "
                + "ebs driver tags its instance with its host id when it starts)")
        }
        guard found.count == 1 else {
            throw .conflict("node \(host): instances \(found.map(\.id).sorted().joined(separator: ", ")) all carry "
                + "tag \(Self.hostTag)=\(host); remove it from those that are not that host")
        }
        return instance
    }

    /// The EBS volume of convoy volume `name`: the one its record names, else the one its name tag names (in
    /// `zone` when several zones hold one).
    private func ebsVolume(_ name: String, driverInfo: [String: String]?, zone: String,
                           ec2: EC2Client) async throws(ConvoyError) -> EC2Volume? {
        if let id = driverInfo?["VolumeID"] { return try await ec2.volume(id) }
        let found = try await ec2.describeVolumes(filters: ["tag:" + Self.nameTag: [name]]).filter {
            !["deleting", "deleted", "error"].contains($0.state)
        }
        guard found.count > 1 else { return found.first }
        let inZone = found.filter { $0.availabilityZone == zone }
        guard inZone.count <= 1 else {
            throw .conflict("volume \(name): EBS volumes \(inZone.map(\.id).sorted().joined(separator: ", ")) all "
                + "carry this name (tag \(Self.nameTag)) in \(zone); delete all but one")
        }
        return inZone.first ?? found.first
    }
}
