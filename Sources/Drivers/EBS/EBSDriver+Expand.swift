import ConvoyCore

/// Growing an EBS volume: ModifyVolume, then (when it is attached here) a wait until the device shows the new
/// size, as it does once EC2 is optimizing the volume; the filesystem grows online afterwards.
extension EBSDriver: ExpandableDriver {
    public var expandsFilesystem: Bool { true }

    public func expandVolume(_ volume: DriverVolume, to size: UInt64) async throws(ConvoyError) -> [String: String] {
        let id = try Self.volumeID(volume)
        let ec2 = try session.get().ec2
        guard let ebsVolume = try await ec2.volume(id) else {
            throw ConvoyError(.notFound, "EBS volume \(id) of volume \(volume.name) does not exist")
        }
        var info = volume.driverInfo
        let gib = (size + (1 << 30) - 1) >> 30
        guard gib > ebsVolume.sizeGiB else {
            info["Size"] = "\(ebsVolume.sizeGiB << 30)"
            return info
        }
        let limits = EBSVolumeOptions.sizeLimits[ebsVolume.volumeType ?? "gp3"] ?? 1...16384
        guard limits.contains(gib) else {
            throw ConvoyError.invalid("size: \(ebsVolume.volumeType ?? "this") volumes are \(limits.lowerBound) to "
                + "\(limits.upperBound) GiB; \(gib) GiB asked")
        }
        try await ec2.modifyVolume(id, sizeGiB: gib)
        if let device = MountInfo.mount(at: try mountpoint(volume))?.source {
            try await waitForDevice(device, bytes: gib << 30, volumeID: id)
        }
        info["Size"] = "\(gib << 30)"
        return info
    }

    public func expandFilesystem(_ volume: DriverVolume) async throws(ConvoyError) {
        let path = try mountpoint(volume)
        if let device = MountInfo.mount(at: path)?.source, let size = volume.driverInfo["Size"].flatMap(UInt64.init) {
            try await waitForDevice(device, bytes: size, volumeID: volume.driverInfo["VolumeID"] ?? "?")
        }
        try await BlockFilesystem.grow(mountedAt: path)
    }

    private func waitForDevice(_ device: String, bytes: UInt64, volumeID: String) async throws(ConvoyError) {
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.attachTimeout
        while try await BlockFilesystem.deviceBytes(device) < bytes {
            guard clock.now < deadline else {
                throw ConvoyError(.driverFailure, "EBS volume \(volumeID) was grown to \(bytes) bytes, but its device "
                    + "\(device) has not grown within \(configuration.attachTimeout) (ebs.attachtimeout); its "
                    + "filesystem grows at the next expansion once it has")
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }
}
