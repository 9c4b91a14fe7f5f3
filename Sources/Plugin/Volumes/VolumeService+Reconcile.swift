import ConvoyCore

/// At start, the state is brought in line with what the drivers show (a crash, a reboot).
extension VolumeService {
    /// Brings the state in line with reality after a start: finishes or undoes interrupted operations, forgets
    /// volumes whose data vanished, remounts volumes that have references, unmounts those that have none.
    /// Returns one line per repair.
    public func reconcile() async -> [String] {
        var repairs: [String] = []
        let records: [VolumeRecord]
        do { records = try store.volumes() } catch {
            return ["cannot read the state to reconcile it: \(error)"]
        }
        for record in records {
            let name = record.name
            guard let driver = drivers[record.driver] else {
                repairs.append("volume \(name): its driver \(record.driver) is not enabled; start the daemon with "
                    + "--drivers \(record.driver) to use it (left as it is)")
                continue
            }
            do {
                switch record.state {
                case .creating, .deleting:
                    if let leftAlone = try settleShared(record) {
                        try store.delete(name)
                        repairs.append(leftAlone)
                        continue
                    }
                    try await driver.deleteVolume(record.driverVolume)
                    try store.delete(name)
                    repairs.append(record.state == .creating
                        ? "volume \(name): its creation was interrupted; removed what it had made"
                        : "volume \(name): its deletion was interrupted; finished it")
                case .ready:
                    if record.references.isEmpty && deletedElsewhere(record) {
                        try store.delete(name)
                        repairs.append("volume \(name): deleted on another host meanwhile; forgot it")
                        continue
                    }
                    try publishReferences(of: name, driver: record.driver)
                    if !driver.dataExists(record.driverVolume) {
                        try store.delete(name)
                        let path = record.driverInfo["Path"] ?? "driver storage gone"
                        repairs.append("volume \(name): its data vanished (\(path)); forgot it and its "
                            + "\(record.references.count) reference(s)")
                        continue
                    }
                    try await reconcileMount(record, driver: driver, repairs: &repairs)
                }
            } catch {
                repairs.append("volume \(name): could not be repaired: \(error)")
            }
        }
        return repairs
    }

    /// Mounts a volume that has references but is not mounted, as a start does: for a lazily restored block
    /// volume, once LazyRestore has attached its origin again. Returns the mountpoint when it mounted it.
    public func remountIfReferenced(_ name: String) async throws(ConvoyError) -> String? {
        try await withVolumeLock(name) { () async throws(ConvoyError) -> String? in
            let record = try readyVolume(name)
            guard !record.references.isEmpty else { return nil }
            var repairs: [String] = []
            try await reconcileMount(record, driver: try driver(for: record), repairs: &repairs,
                                     lazyAttached: true)
            return repairs.isEmpty ? nil : try readyVolume(name).mountpoint
        }
    }

    func reconcileMount(_ record: VolumeRecord, driver: any VolumeDriver, repairs: inout [String],
                                lazyAttached: Bool = false) async throws(ConvoyError) {
        let name = record.name
        // A lazily restored volume needs its backup attached first (LazyRestore.resumeAll).
        if !lazyAttached && reattachedByHooks(record) { return }
        if record.references.isEmpty {
            if driver.mountsVolumes && driver.isMounted(record.driverVolume) {
                try await driver.unmountVolume(record.driverVolume)
                // A volume in a shared mount (a gluster pool) stays reachable: nothing was repaired then.
                if !driver.isMounted(record.driverVolume) {
                    repairs.append("volume \(name): was mounted with no references; unmounted it")
                }
            }
            if record.mountpoint != nil { try store.setMountpoint(nil, of: name) }
            return
        }
        if RawBlock.isRaw(record.driverInfo) {
            // Its references hold the device, not a mount: active again after a reboot.
            let device = try await rawDevice(record)
            if record.mountpoint != device { try store.setMountpoint(device, of: name) }
            return
        }
        if record.mountpoint == nil || (driver.mountsVolumes && !driver.isMounted(record.driverVolume)) {
            let mountpoint = try await driver.mountVolume(record.driverVolume)
            try store.setMountpoint(mountpoint, of: name)
            repairs.append("volume \(name): has \(record.references.count) reference(s) but was not mounted; "
                + "mounted it at \(mountpoint)")
        }
    }
}
