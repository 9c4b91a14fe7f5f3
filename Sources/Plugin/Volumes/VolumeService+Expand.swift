import ConvoyCore

/// Growing volumes (CSI's expansion). A driver that sizes its storage (devicemapper, ebs) grows it, then the
/// filesystem of a mounted volume; a driver whose volumes are directories (vfs, glusterfs) only records the size,
/// which it never enforced. Sizes only grow: a smaller one leaves the volume as it is.
extension VolumeService {
    /// Grows volume `name` to at least `size` bytes; the record as it is afterwards.
    public func expand(_ name: String, to size: UInt64) async throws(ConvoyError) -> VolumeRecord {
        try ObjectName.validate(name)
        return try await withVolumeLock(name) { () async throws(ConvoyError) -> VolumeRecord in
            let record = try readyVolume(name)
            guard size > record.size else { return record }
            let driver = try self.driver(for: record)
            guard let expandable = driver as? any ExpandableDriver else {
                try store.setSize(size, driverInfo: record.driverInfo, of: name)
                return try readyVolume(name)
            }
            let info: [String: String]
            do {
                info = try await expandable.expandVolume(record.driverVolume, to: size)
            } catch {
                throw ConvoyError.wrap(error, context: "cannot grow volume \(name)", as: .driverFailure)
            }
            try store.setSize(info["Size"].flatMap(UInt64.init) ?? size, driverInfo: info, of: name)
            let grown = try readyVolume(name)
            if expandable.isMounted(grown.driverVolume) {
                try await growFilesystem(grown, expandable)
            }
            logger.info("volume grown", metadata: ["volume": "\(name)", "size": "\(grown.size)"])
            return grown
        }
    }

    /// Grows the filesystem of mounted volume `name` to fill its storage (CSI's NodeExpandVolume, after the
    /// storage has grown); nothing to do for a directory-backed volume.
    public func expandFilesystem(_ name: String) async throws(ConvoyError) -> VolumeRecord {
        try ObjectName.validate(name)
        return try await withVolumeLock(name) { () async throws(ConvoyError) -> VolumeRecord in
            let record = try readyVolume(name)
            guard let expandable = try self.driver(for: record) as? any ExpandableDriver,
                  !RawBlock.isRaw(record.driverInfo) else { return record }
            guard expandable.isMounted(record.driverVolume) else {
                throw ConvoyError(.conflict, "volume \(name) is not mounted here: its filesystem grows while mounted")
            }
            try await growFilesystem(record, expandable)
            return record
        }
    }

    private func growFilesystem(_ record: VolumeRecord, _ driver: any ExpandableDriver) async throws(ConvoyError) {
        do {
            try await driver.expandFilesystem(record.driverVolume)
        } catch {
            throw ConvoyError.wrap(error, context: "volume \(record.name) has grown to \(record.size) bytes, but "
                + "not its filesystem", as: .driverFailure)
        }
    }
}
