import ConvoyCore

/// Volumes of attaching drivers (ebs) that another host made: a CSI node asked to stage one that followed its pod
/// here (or a controller asked to delete one it did not make) records it at its first use, as a Docker Create of
/// the same name on this host would, without making anything.
extension VolumeService {
    /// This host's record of `name`, else the attaching driver's volume of that name recorded here; nil when
    /// neither exists. `driver` narrows the search to one driver (a CSI volume context names it).
    public func localOrMadeElsewhere(_ name: String, driver: String? = nil) async throws(ConvoyError)
        -> VolumeRecord? {
        // An id that could not be a convoy name names nothing (CSI ids are opaque).
        guard (try? ObjectName.validate(name)) != nil else { return nil }
        if let record = try store.volume(named: name) { return record }
        for candidate in driverOrder where driver == nil || driver == candidate {
            guard let attaching = drivers[candidate] as? any AttachingDriver,
                  let found = try await attaching.madeElsewhere(name) else { continue }
            return try await withVolumeLock(name) { () throws(ConvoyError) -> VolumeRecord in
                if let record = try store.volume(named: name) { return record }
                let record = VolumeRecord(name: name, driver: candidate, size: found.size,
                                          createdAt: Self.timestamp(), state: .ready, options: [:],
                                          driverInfo: found.driverInfo)
                try store.insert(record)
                logger.info("volume made by another host recorded here",
                            metadata: ["volume": "\(name)", "driver": "\(candidate)"])
                return record
            }
        }
        return nil
    }
}
