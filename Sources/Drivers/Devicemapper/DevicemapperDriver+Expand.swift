import ConvoyCore

/// Growing a thin volume: its device's table is reloaded with the new length (the kernel suspends it around the
/// swap; the pool maps the new blocks on first write, so nothing is copied), then its filesystem grows online.
extension DevicemapperDriver: ExpandableDriver {
    public var expandsFilesystem: Bool { true }

    public func expandVolume(_ volume: DriverVolume, to size: UInt64) async throws(ConvoyError) -> [String: String] {
        guard let id = volume.driverInfo["DeviceID"],
              let current = volume.driverInfo["Size"].flatMap(UInt64.init) else {
            throw ConvoyError(.stateFailure, "volume \(volume.name) has no device id or size in its record")
        }
        // Its blocks beyond the old end would read the backup image's, which has none there.
        guard volume.driverInfo[Self.externalOriginKey] == nil else {
            throw ConvoyError(.conflict, "volume \(volume.name) is still being restored lazily: grow it once it is "
                + "hydrated (convoy hydrate \(volume.name) --wait) and has been unmounted")
        }
        let wanted = (size + 511) / 512 * 512
        guard wanted > current else { return volume.driverInfo }
        let device = try await activate(volume)
        try await DMSetup.replaceTable(deviceName(volume.name), table: thinTable(volume, id: id, size: wanted,
                                                                                 origin: nil))
        let grown = try await DMSetup.sectors(device) * 512
        guard grown == wanted else {
            throw ConvoyError(.driverFailure, "thin device \(device) has \(grown) bytes after growing it to \(wanted)")
        }
        var info = volume.driverInfo
        info["Size"] = "\(wanted)"
        return info
    }

    public func expandFilesystem(_ volume: DriverVolume) async throws(ConvoyError) {
        try await BlockFilesystem.grow(mountedAt: try mountpoint(volume))
    }
}
