import AWS
import ConvoyCore

/// Attaches volumes to this instance under a free device name and finds their block devices; detaches them.
struct EBSAttacher: Sendable {
    /// The names EBS data volumes conventionally take.
    static let deviceNames = (UInt8(ascii: "f")...UInt8(ascii: "p")).map { "/dev/sd" + String(UnicodeScalar($0)) }

    let instanceID: String
    let ec2: EC2Client
    let finder: EBSDeviceFinder
    let reservations: DeviceNameReservations
    let timeout: Duration

    /// The volume's block device, attaching it first unless it is attached here already.
    func attach(_ volumeID: String) async throws(ConvoyError) -> String {
        guard let volume = try await ec2.volume(volumeID) else {
            throw .notFound("EBS volume \(volumeID) does not exist (any more)")
        }
        let name: String
        if let mine = volume.attachments.first(where: {
            $0.instanceID == instanceID && ["attached", "attaching"].contains($0.state)
        }) {
            // Attached here already (a restart), or on its way (an attach interrupted).
            name = mine.device
            try await waitUntilAttached(volumeID, as: name)
        } else {
            if let other = volume.attachments.first(where: { $0.state != "detached" }) {
                throw .conflict("EBS volume \(volumeID) is \(other.state) on instance \(other.instanceID); "
                    + "detach it there first (or wait until it is detached)")
            }
            name = try await reserveDeviceName()
            defer { reservations.release(name) }
            try await ec2.attachVolume(volumeID, instanceID: instanceID, device: name)
            try await waitUntilAttached(volumeID, as: name)
        }
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
        try await ec2.detachVolume(volumeID, instanceID: instanceID)
        _ = try await EBSWait.until("EBS volume \(volumeID) detached from \(instanceID)",
                                    timeout: timeout) { () async throws(ConvoyError) -> Bool? in
            let attached = try await ec2.volume(volumeID)?.attachments.contains {
                $0.instanceID == instanceID && $0.state != "detached"
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
            throw ConvoyError(.conflict, "instance \(instanceID) has no free device name left "
                + "(/dev/sdf to /dev/sdp are taken); delete or detach a volume first")
        }
        return name
    }
}
