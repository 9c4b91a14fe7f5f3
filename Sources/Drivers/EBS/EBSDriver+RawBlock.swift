import ConvoyCore

/// Raw block volumes (CSI block access) on EBS: created without a filesystem (`receivesImage`), attached under
/// the same lease as a mount, and handed over as the attached device; unmounting (the last reference gone)
/// releases the lease as for a mounted volume. A takeover force-detaches the device from a dead host's
/// instance, which is also what stops a fenced host writing to it.
extension EBSDriver: RawDeviceDriver {
    public func attachRawDevice(_ volume: DriverVolume) async throws(ConvoyError) -> String {
        guard RawBlock.isRaw(volume.driverInfo) else {
            throw .conflict("volume \(volume.name) has a filesystem: mount it instead of attaching its device")
        }
        let id = try Self.volumeID(volume)
        let current = try session.get()
        // Another reference (a second staging path) may already hold the lease and the device: a failure here must
        // not give up what that one holds.
        let heldAlready = leases.record(volume.name)?.state == .held
        let displaced = try await leases.take(volume.name, volumeID: id, instance: current.identity.instanceID,
                                              ec2: current.ec2)
        if let displaced {
            logger.warning("""
                ebs lease: detaching volume \(volume.name) (\(id)) from \(displaced.holder) by force, \
                if it is still attached there
                """)
        }
        do {
            return try await attacher().attach(id, takingOver: true)
        } catch {
            if !heldAlready { try? await leases.release(volume.name, volumeID: id, ec2: current.ec2) }
            throw error
        }
    }
}
