import AWS
import ConvoyCore

/// Attaches volumes to an instance (this one, or a node's for a CSI controller) under a free device name, finds
/// their block devices on this one; detaches them.
struct EBSAttacher: Sendable {
    /// The names EBS data volumes conventionally take.
    static let deviceNames = (UInt8(ascii: "f")...UInt8(ascii: "p")).map { "/dev/sd" + String(UnicodeScalar($0)) }

    let instanceID: String
    let ec2: EC2Client
    let finder: EBSDeviceFinder
    let reservations: DeviceNameReservations
    let timeout: Duration

    /// What to do about an attachment of the volume to another instance.
    enum Others: Sendable {
        /// A conflict: the volume is another instance's.
        case refuse
        /// Detach it there and wait (no host uses it: no lease).
        case detach
        /// A dead host's (its lease ran out unreleased): detach it by force, not waiting for that instance to
        /// let the volume go, as EC2's Force does.
        case forceDetach
    }

    /// The volume's block device, attaching it first unless it is attached here already. `takingOver`: this
    /// host holds the volume's lease, so an attachment to another instance is a dead host's, force-detached
    /// first; without it such an attachment is a conflict.
    func attach(_ volumeID: String, takingOver: Bool = false) async throws(ConvoyError) -> String {
        let name = try await attachToInstance(volumeID, others: takingOver ? .forceDetach : .refuse)
        do {
            return try await EBSWait.until("the block device of EBS volume \(volumeID) "
                                           + "(attached as \(name)) appearing",
                                           timeout: timeout) { () async throws(ConvoyError) -> String? in
                finder.device(volumeID: volumeID, attachedAs: name)
            }
        } catch {
            throw ConvoyError(.driverFailure, "\(error.message); looked for "
                + "\(finder.candidates(volumeID: volumeID, attachedAs: name).joined(separator: ", "))")
        }
    }

    /// Attaches the volume to this attacher's instance (unless it is attached there already) and waits until EC2
    /// says it is; returns the device name it is attached as. Its block device appears on that instance, which
    /// need not be the one this process runs on (a CSI controller attaching for a node).
    func attachToInstance(_ volumeID: String, others: Others) async throws(ConvoyError) -> String {
        guard var volume = try await ec2.volume(volumeID) else {
            throw .notFound("EBS volume \(volumeID) does not exist (any more)")
        }
        if let mine = volume.attachments.first(where: {
            $0.instanceID == instanceID && ["attached", "attaching"].contains($0.state)
        }) {
            // Attached here already (a restart), or on its way (an attach interrupted).
            try await waitUntilAttached(volumeID, as: mine.device)
            return mine.device
        }
        if others != .refuse, let other = volume.attachments.first(where: { $0.state != "detached" }) {
            try await detach(volumeID, from: other.instanceID, force: others == .forceDetach)
            volume = try await ec2.volume(volumeID) ?? volume
        }
        if let other = volume.attachments.first(where: { $0.state != "detached" }) {
            throw .conflict("EBS volume \(volumeID) is \(other.state) on instance \(other.instanceID); "
                + "detach it there first (or wait until it is detached)")
        }
        let name = try await reserveDeviceName()
        defer { reservations.release(name) }
        try await ec2.attachVolume(volumeID, instanceID: instanceID, device: name)
        try await waitUntilAttached(volumeID, as: name)
        return name
    }

    private func waitUntilAttached(_ volumeID: String, as name: String) async throws(ConvoyError) {
        _ = try await EBSWait.until("EBS volume \(volumeID) attached to \(instanceID) as \(name)",
                                    timeout: timeout) { () async throws(ConvoyError) -> Bool? in
            let attachment = try await ec2.volume(volumeID)?.attachments.first { $0.instanceID == instanceID }
            return attachment?.state == "attached" ? true : nil
        }
    }

    /// Detaches the volume from this instance and waits until EC2 says it is. A volume not attached here (or gone)
    /// is left alone.
    func detach(_ volumeID: String) async throws(ConvoyError) {
        guard let volume = try await ec2.volume(volumeID),
              volume.attachments.contains(where: { $0.instanceID == instanceID && $0.state != "detached" }) else {
            return
        }
        try await detach(volumeID, from: instanceID, force: false)
    }

    /// Detaches the volume from every instance that has it: a delete, which no live lease of another host holds
    /// back (a volume found on another host's instance, attached there since it was made).
    func detachEverywhere(_ volumeID: String) async throws(ConvoyError) {
        for attachment in try await ec2.volume(volumeID)?.attachments ?? [] where attachment.state != "detached" {
            try await detach(volumeID, from: attachment.instanceID, force: false)
        }
    }

    /// Detaches the volume from `instance` and waits until EC2 says it is.
    func detach(_ volumeID: String, from instance: String, force: Bool) async throws(ConvoyError) {
        try await ec2.detachVolume(volumeID, instanceID: instance, force: force)
        _ = try await EBSWait.until("EBS volume \(volumeID) \(force ? "force-" : "")detached from \(instance)",
                                    timeout: timeout) { () async throws(ConvoyError) -> Bool? in
            let attached = try await ec2.volume(volumeID)?.attachments.contains {
                $0.instanceID == instance && $0.state != "detached"
            }
            return attached == true ? nil : true
        }
    }

    /// A name used neither by the instance's block-device mapping nor by a volume attached here, `sdX` and `xvdX`
    /// counting as one.
    private func reserveDeviceName() async throws(ConvoyError) -> String {
        var used = try await ec2.instanceDeviceNames(instanceID)
        for volume in try await ec2.describeVolumes(filters: ["attachment.instance-id": [instanceID]]) {
            for attachment in volume.attachments where attachment.instanceID == instanceID {
                used.insert(attachment.device)
            }
        }
        let normalized = Set(used.map { $0.replacingOccurrences(of: "/dev/xvd", with: "/dev/sd") })
        guard let name = reservations.reserve(from: Self.deviceNames, used: normalized) else {
            throw ConvoyError(.exhausted, "instance \(instanceID) has no free device name left "
                + "(/dev/sdf to /dev/sdp are taken); delete or detach a volume first")
        }
        return name
    }
}
