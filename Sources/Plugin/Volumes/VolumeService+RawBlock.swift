import ConvoyCore

/// Raw block volumes (CSI's block access): a block driver's volume made without a filesystem (`RawBlock`), used
/// as its device. Its references are taken like mounts' (one table with Docker's), but what they hold is the
/// active device, whose path is the recorded mountpoint; Docker cannot mount one.
extension VolumeService {
    /// Creates a raw block volume with a block driver; an existing one of that name is returned as it is.
    public func createRawBlock(name: String, options: [String: String]) async throws(ConvoyError) -> VolumeRecord {
        let driverName = options["driver"] ?? defaultDriver
        guard drivers[driverName] is any BlockImageDriver || drivers[driverName] is any RawDeviceDriver else {
            throw .invalid("block access needs a block driver (devicemapper, ebs); \(driverName) volumes are "
                + "directories")
        }
        return try await create(name: name, options: options, receivesImage: true) { _, _ throws(ConvoyError) in
            ["FS": RawBlock.filesystem]
        }
    }

    /// Takes reference `referenceID` on raw block volume `name` and returns its device, activated.
    public func attachDevice(_ name: String, referenceID: String) async throws(ConvoyError) -> String {
        try ObjectName.validate(name)
        return try await withVolumeLock(name) { () async throws(ConvoyError) -> String in
            let record = try readyVolume(name)
            let device = try await rawDevice(record)
            _ = try store.addReference(referenceID, to: name, mountpoint: device)
            try publishReferences(of: name, driver: record.driver)
            return device
        }
    }

    /// The active device of a raw block volume.
    func rawDevice(_ record: VolumeRecord) async throws(ConvoyError) -> String {
        let driver = try self.driver(for: record)
        guard RawBlock.isRaw(record.driverInfo),
              driver is any BlockImageDriver || driver is any RawDeviceDriver else {
            throw .conflict("volume \(record.name) has a filesystem: it is used as a filesystem (mount access), "
                + "not as a block device")
        }
        do {
            if let attaching = driver as? any RawDeviceDriver {
                return try await attaching.attachRawDevice(record.driverVolume)
            }
            guard let blockDriver = driver as? any BlockImageDriver else {
                throw ConvoyError(.internalFailure, "driver \(driver.name) has no devices")
            }
            return try await blockDriver.deviceForImage(record.driverVolume)
        } catch {
            throw ConvoyError.wrap(error, context: "cannot activate the device of volume \(record.name)",
                                   as: .driverFailure)
        }
    }
}
