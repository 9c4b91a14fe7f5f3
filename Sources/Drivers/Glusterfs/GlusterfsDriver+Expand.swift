import ConvoyCore

/// Growing a gluster volume: its directory's quota is raised (limit-usage replaces the old limit); a volume
/// whose size was never enforced (no quota on the pool) only records the new size. The FUSE mount sees the new
/// limit at once, so there is no filesystem step.
extension GlusterfsDriver: ExpandableDriver {
    public var expandsFilesystem: Bool { false }

    public func expandVolume(_ volume: DriverVolume, to size: UInt64) async throws(ConvoyError) -> [String: String] {
        var info = volume.driverInfo
        if info["SizeEnforced"] == "true" {
            try await GlusterCommands.limit(pool: try pool(of: volume), directory: volume.name, bytes: size)
        }
        info["Size"] = "\(size)"
        return info
    }

    public func expandFilesystem(_ volume: DriverVolume) async throws(ConvoyError) {}
}
