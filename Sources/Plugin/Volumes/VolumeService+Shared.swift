import ConvoyCore
import Foundation

/// Volumes of drivers whose storage several hosts share (issue 19): the shared catalog says which exist; this
/// host's state holds those it has used, with its own references, which it publishes to the catalog.
extension VolumeService {
    /// The shared catalog holding `name`, and its entry there, if any driver's catalog has it.
    nonisolated func sharedEntry(_ name: String) throws(ConvoyError) -> (SharedCatalog, SharedCatalog.Volume)? {
        for driver in driverOrder {
            guard let catalog = shared[driver] else { continue }
            if let volume = try catalog.volume(name) { return (catalog, volume) }
        }
        return nil
    }

    /// A shared volume as this host would record it (ready, without references here).
    nonisolated func record(of volume: SharedCatalog.Volume) -> VolumeRecord {
        VolumeRecord(name: volume.name, driver: volume.driver, size: volume.size, createdAt: volume.createdAt,
                     state: .ready, options: volume.options, driverInfo: volume.driverInfo)
    }

    /// Whether a local record is of a shared volume that another host has since deleted (false while the
    /// catalog cannot be read: an outage of the shared storage deletes nothing).
    nonisolated func deletedElsewhere(_ record: VolumeRecord) -> Bool {
        guard let catalog = shared[record.driver], record.state == .ready else { return false }
        do {
            return try catalog.volume(record.name) == nil
        } catch {
            return false
        }
    }

    /// The shared volumes this host has no record of, from every catalog that answers (one that does not is
    /// logged, and List goes on with what it has).
    nonisolated func sharedVolumes(besides known: Set<String>) -> [VolumeRecord] {
        var result: [VolumeRecord] = []
        for driver in driverOrder {
            guard let catalog = shared[driver] else { continue }
            do {
                for volume in try catalog.volumes() where !known.contains(volume.name) {
                    result.append(record(of: volume))
                }
            } catch {
                logger.warning("volumes of other hosts left out of the list", metadata: ["error": "\(error.message)"])
            }
        }
        return result
    }

    /// The shared volume `name` in this host's state (its first use here); nil when no catalog has it.
    func adopt(_ name: String) throws(ConvoyError) -> VolumeRecord? {
        guard let (_, volume) = try sharedEntry(name) else { return nil }
        let record = record(of: volume)
        try store.insert(record)
        logger.info("volume of another host used here", metadata: ["volume": "\(name)", "created by": "\(volume.host)"])
        return record
    }

    /// This host's record of `name`, else the shared volume `name` adopted (nil: neither exists).
    func localOrAdopted(_ name: String) throws(ConvoyError) -> VolumeRecord? {
        if let record = try store.volume(named: name) { return record }
        return try adopt(name)
    }

    /// This host's references to a shared volume, as the state now has them, written to its catalog.
    func publishReferences(of name: String, driver: String) throws(ConvoyError) {
        guard let catalog = shared[driver] else { return }
        try catalog.setReferences(try store.volume(named: name)?.references ?? [], to: name, host: hostID)
    }

    /// Refuses to delete a shared volume that a live host other than this one still mounts.
    nonisolated func refuseIfMountedElsewhere(_ record: VolumeRecord) throws(ConvoyError) {
        guard let catalog = shared[record.driver] else { return }
        let others = try catalog.liveReferences(to: record.name, besides: hostID)
        guard !others.isEmpty else { return }
        let named = others.map { "\($0.host) (\($0.count) mount(s))" }.joined(separator: ", ")
        logger.info("delete refused: another live host mounts the volume",
                    metadata: ["volume": "\(record.name)", "host": "\(hostID)", "mounted on": "\(named)"])
        throw ConvoyError(.inUse, "volume \(record.name) is in use on host \(named); stop the containers using it "
            + "there first (a host that died stops counting when its lease expires)")
    }

    /// At start, for a volume whose create or delete was interrupted: in shared storage, what is this host's to
    /// undo. Returns why its data is left alone (only the local record goes), or nil to delete it as usual (having
    /// taken this host's entry out of the catalog). A name is another host's when the catalog's entry is not the
    /// one this record made or was deleting (another host claimed it, or made it again since); a create
    /// interrupted before its claim made nothing in the storage.
    func settleShared(_ record: VolumeRecord) throws(ConvoyError) -> String? {
        guard let catalog = shared[record.driver] else { return nil }
        guard let entry = try catalog.volume(record.name) else {
            return record.state == .creating
                ? "volume \(record.name): its creation was interrupted before it was claimed; nothing to undo"
                : nil
        }
        let same = entry.createdAt == record.createdAt && (record.state == .deleting || entry.host == hostID)
        guard same else {
            return "volume \(record.name): interrupted here, and the name is host \(entry.host)'s now; "
                + "its data is left alone"
        }
        try catalog.forget(record.name)
        return nil
    }

    /// A Create of a name that another host (or this one) created in a shared catalog: the volume, as Docker's
    /// repeated Creates expect, when it is what was asked for; else an error naming who created it.
    func adoptCreated(_ volume: SharedCatalog.Volume, asked options: CreateOptions,
                      mustBeNew: Bool) throws(ConvoyError) -> VolumeRecord {
        let sameSize = options.size == 0 || options.size == volume.size
        guard !mustBeNew, options.driver == volume.driver, sameSize, options.driverOptions == volume.options else {
            let other = mustBeNew ? "" : ", with other options"
            throw .conflict("a volume named \(volume.name) exists already (created on host \(volume.host) at "
                + "\(volume.createdAt)\(other)); choose another name or delete it first")
        }
        return try adopt(volume.name) ?? record(of: volume)
    }
}
