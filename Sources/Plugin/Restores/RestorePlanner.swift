import ConvoyCore

/// The one way a volume is made for a backup's data, shared by full restores, Convoy 0.5 restores and lazy
/// restores: the backup's recorded size unless one is given, a driver that can hold the backup's kind (files: a
/// directory-backed driver; a block image: a block-image driver, created blank), and the new volume filled by
/// `populate` before it becomes ready. Nothing of the volume is left when anything fails.
public struct RestorePlanner: Sendable {
    let volumes: VolumeService

    public init(volumes: VolumeService) {
        self.volumes = volumes
    }

    /// `options` for a new volume of a backup: the backup's size (`recordedSize`, 0 if unknown) unless the
    /// caller gave one.
    static func options(_ options: [String: String], recordedSize: UInt64) -> [String: String] {
        var options = options
        if options["size"] == nil, recordedSize > 0 { options["size"] = "\(recordedSize)" }
        return options
    }

    /// The driver a block image goes to when none is named: the first running block-image driver in the
    /// daemon's order. Nil when none runs (the create then names what is missing).
    func defaultBlockDriver() -> String? {
        volumes.driverOrder.first { volumes.drivers[$0] is any BlockImageDriver }
    }

    /// Creates volume `name` for a file backup and fills its directory.
    func createForFiles(
        name: String, options: [String: String], recordedSize: UInt64,
        populate: @escaping @Sendable (_ directory: String, any VolumeDriver, DriverVolume) async throws(ConvoyError)
            -> [String: String]
    ) async throws(ConvoyError) -> VolumeRecord {
        try await volumes.create(name: name, options: Self.options(options, recordedSize: recordedSize),
                                 mustBeNew: true) { driver, volume throws(ConvoyError) in
            let directory = try driver.directory(of: volume,
                                                 refusal: "driver \(driver.name) cannot restore a file backup")
            return try await populate(directory, driver, volume)
        }
    }

    /// Creates volume `name` blank for a block image (`what` names the backup in errors) and fills it; the
    /// filesystem the image brings is recorded as the volume's (`FS`) unless `populate` says it.
    func createForImage(
        name: String, options: [String: String], recordedSize: UInt64, what: String,
        populate: @escaping @Sendable (any BlockImageDriver, DriverVolume) async throws(ConvoyError) -> [String: String]
    ) async throws(ConvoyError) -> VolumeRecord {
        var options = Self.options(options, recordedSize: recordedSize)
        if options["driver"] == nil {
            guard let driver = defaultBlockDriver() else {
                throw ConvoyError(.unavailable, "\(what) is a block backup: restore it with a block driver "
                    + "(devicemapper), which this daemon does not run (--drivers ...,devicemapper)")
            }
            options["driver"] = driver
        }
        return try await volumes.create(name: name, options: options, mustBeNew: true, receivesImage: true) {
            driver, volume throws(ConvoyError) in
            guard let blockDriver = driver as? any BlockImageDriver else {
                throw ConvoyError.invalid("\(what) is a block backup: restore it with a block driver (devicemapper), "
                    + "not \(driver.name)")
            }
            var info = try await populate(blockDriver, volume)
            if info["FS"] == nil {
                var filled = volume
                filled.driverInfo.merge(info) { $1 }
                // An image without a filesystem (a raw block volume's) restores raw.
                info["FS"] = try await blockDriver.detectFilesystem(filled) ?? RawBlock.filesystem
            }
            return info
        }
    }
}
