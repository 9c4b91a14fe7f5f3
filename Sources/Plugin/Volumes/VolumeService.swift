import ConvoyCore
import Foundation
import Logging

/// The heart of the daemon: creates, removes, mounts and unmounts volumes through their drivers, keeping the
/// state store the single source of truth. Mounts are reference counted per ID: the first reference mounts, the
/// last one unmounts, and the references are persisted so a restart neither loses nor leaks them.
public actor VolumeService {
    public let store: StateStore
    public let drivers: [String: any VolumeDriver]
    public let driverOrder: [String]
    public let ignoreDockerDelete: Bool
    let logger: Logger
    private var locks = VolumeLocks()
    /// Volumes a job (snapshot) is reading: they cannot be removed until it ends.
    private var busy: [String: Int] = [:]
    /// What other parts of the daemon add to mounting, unmounting and deleting (lazy volumes, snapshots).
    private let hooks: [any VolumeLifecycleHooks]
    /// By driver name: the catalogs of drivers whose storage several hosts share (VolumeService+Shared).
    let shared: [String: SharedCatalog]
    /// This host, as it records its references in shared catalogs.
    let hostID: String

    /// Times the drivers' create, delete, mount and unmount (`timed`); nil: not measured.
    let metrics: DaemonMetrics?

    public init(store: StateStore, drivers: [any VolumeDriver], ignoreDockerDelete: Bool,
                hooks: [any VolumeLifecycleHooks] = [], shared: [String: SharedCatalog] = [:],
                hostID: String = "local", logger: Logger, metrics: DaemonMetrics? = nil) {
        self.metrics = metrics
        self.shared = shared
        self.hostID = hostID
        self.store = store
        var byName: [String: any VolumeDriver] = [:]
        for driver in drivers { byName[driver.name] = driver }
        self.drivers = byName
        self.driverOrder = drivers.map(\.name)
        self.ignoreDockerDelete = ignoreDockerDelete
        self.hooks = hooks
        self.logger = logger
    }

    /// Runs `body` under the volume's lock when the volume is ready and has no references; a non-nil result
    /// replaces its driver info. Returns false when the volume is in use (or gone), so nothing ran.
    public func whenIdle(_ name: String, _ body: @Sendable (VolumeRecord) async -> [String: String]?) async -> Bool {
        await withVolumeLockNoThrow(name) { () async -> Bool in
            guard let record = try? store.volume(named: name), record.state == .ready, record.references.isEmpty,
                  busy[name] == nil else { return false }
            if let info = await body(record) {
                do throws(ConvoyError) { try store.update(name, state: .ready, driverInfo: info) } catch {
                    logger.error("cannot record the new state of volume \(name): \(error.message)")
                }
            }
            return true
        }
    }

    public func beginJob(on name: String) async throws(ConvoyError) {
        try await withVolumeLock(name) { () async throws(ConvoyError) in
            _ = try readyVolume(name)
            busy[name, default: 0] += 1
        }
    }

    public func endJob(on name: String) {
        if let count = busy[name], count > 1 { busy[name] = count - 1 } else { busy[name] = nil }
    }

    public nonisolated var defaultDriver: String { driverOrder.first ?? "vfs" }

    /// `global` only when every driver is shared storage.
    public nonisolated var scope: VolumeScope {
        drivers.values.allSatisfy { $0.scope == .global } ? .global : .local
    }

    // MARK: Reads (no lock: each is one consistent database read)

    public nonisolated func get(_ name: String) throws(ConvoyError) -> VolumeRecord {
        try ObjectName.validate(name)
        if let record = try store.volume(named: name), !deletedElsewhere(record) || !record.references.isEmpty {
            return record
        }
        if let (_, volume) = try sharedEntry(name) { return record(of: volume) }
        throw .notFound("no volume named '\(name)'; `convoy list` shows the volumes there are")
    }

    /// The driver's word on the volume's storage (empty when its driver is not running).
    public nonisolated func driverStatus(of record: VolumeRecord) async -> [String: String] {
        await drivers[record.driver]?.status(of: record.driverVolume) ?? [:]
    }

    /// This host's volumes and those of the shared catalogs (less those another host deleted).
    public nonisolated func list() throws(ConvoyError) -> [VolumeRecord] {
        let all = try store.volumes()
        let local = all.filter { $0.state == .ready && (!deletedElsewhere($0) || !$0.references.isEmpty) }
        return (local + sharedVolumes(besides: Set(all.map(\.name)))).sorted { $0.name < $1.name }
    }

    // MARK: Operations

    /// Fills a new volume; returns driver info to add to the volume's record (empty for none).
    public typealias Populate = @Sendable (any VolumeDriver, DriverVolume) async throws(ConvoyError) -> [String: String]

    /// Creates a volume; an existing volume of that name is returned as it is (Docker calls Create for volumes
    /// that already exist), unless `mustBeNew`. `populate` fills the new volume (a restore) before it becomes
    /// ready; if anything fails, nothing of the volume remains.
    /// `receivesImage`: `populate` writes a whole volume's image (a block restore), so the driver creates it blank.
    public func create(name: String?, options raw: [String: String], mustBeNew: Bool = false,
                       receivesImage: Bool = false,
                       populate: Populate? = nil) async throws(ConvoyError) -> VolumeRecord {
        let name = try name.map { name throws(ConvoyError) in try ObjectName.validate(name) }
            ?? ObjectName.generate(prefix: "volume")
        guard raw["backup"] == nil else {
            throw ConvoyError(.internalFailure, "a create with a backup must go through the restore path")
        }
        let options = try CreateOptions(raw, drivers: drivers, defaultDriver: defaultDriver)
        return try await withVolumeLock(name) { () async throws(ConvoyError) -> VolumeRecord in
            if let existing = try store.volume(named: name), !deletedElsewhere(existing) {
                if mustBeNew {
                    throw .conflict("a volume named \(name) exists already; choose another name or delete it first")
                }
                if existing.state == .ready { return existing }
                throw .conflict("volume \(name) is being \(existing.state.participle); try again")
            } else if let stale = try store.volume(named: name), stale.references.isEmpty {
                try store.delete(name)
            }
            if let (_, volume) = try sharedEntry(name) {
                return try adoptCreated(volume, asked: options, mustBeNew: mustBeNew)
            }
            guard let driver = drivers[options.driver] else { throw .invalid("unknown driver '\(options.driver)'") }
            var record = VolumeRecord(
                name: name, driver: options.driver,
                size: options.size == 0 ? driver.defaultVolumeSize ?? 0 : options.size, createdAt: Self.timestamp(),
                state: .creating, options: options.driverOptions, driverInfo: [:])
            // Recorded before the driver acts, so a crash in between is found and undone at the next start.
            try store.insert(record)
            Failpoint.reach("create-recorded")
            // In shared storage the catalog decides who creates a name: of two hosts at once, one wins.
            if let catalog = shared[options.driver] {
                let claim: SharedCatalog.Claim
                do throws(ConvoyError) {
                    claim = try catalog.claim(SharedCatalog.Volume(
                        name: name, driver: options.driver, size: record.size, createdAt: record.createdAt,
                        options: record.options, driverInfo: [:], host: hostID))
                } catch {
                    try? store.delete(name)
                    throw error
                }
                if case .exists(let volume) = claim {
                    try store.delete(name)
                    return try adoptCreated(volume, asked: options, mustBeNew: mustBeNew)
                }
            }
            do {
                var blank = record.driverVolume
                blank.receivesImage = receivesImage
                record.driverInfo = try await timed(driver, "create") { () throws(ConvoyError) in
                    try await driver.createVolume(blank)
                }
            } catch {
                // The driver left nothing behind, and what stands in the way (a directory of that name, another
                // host's volume in a shared pool) is not ours to delete.
                try? shared[options.driver]?.forget(name)
                try? store.delete(name)
                throw ConvoyError.wrap(error, context: "cannot create volume \(name)", as: .driverFailure)
            }
            do {
                // Record the driver's info before populating, so a crash mid-restore is undone at the next start.
                try store.update(name, state: .creating, driverInfo: record.driverInfo)
                if let catalog = shared[options.driver] {
                    try catalog.update(SharedCatalog.Volume(
                        name: name, driver: options.driver, size: record.size, createdAt: record.createdAt,
                        options: record.options, driverInfo: record.driverInfo, host: hostID))
                }
                Failpoint.reach("create-driver-done")
                if let populate {
                    record.driverInfo.merge(try await populate(driver, record.driverVolume)) { $1 }
                    Failpoint.reach("create-populated")
                }
                record.state = .ready
                try store.update(name, state: .ready, driverInfo: record.driverInfo)
            } catch {
                for hook in hooks { try? await hook.willDelete(record) }
                try? shared[options.driver]?.forget(name)
                try? await driver.deleteVolume(record.driverVolume)
                try? store.delete(name)
                throw ConvoyError.wrap(error, context: "cannot create volume \(name)", as: .driverFailure)
            }
            logger.info("created volume", metadata: ["volume": "\(name)", "driver": "\(options.driver)"])
            return record
        }
    }

    /// Removes a volume and its data. Refused while the volume has references. With `ignoreDockerDelete`, a
    /// Remove from Docker leaves the volume and its data in place (Convoy's old behaviour).
    public func remove(_ name: String, fromDocker: Bool) async throws(ConvoyError) {
        try ObjectName.validate(name)
        try await withVolumeLock(name) { () async throws(ConvoyError) in
            guard let record = try localOrAdopted(name) else {
                throw .notFound("no volume named '\(name)'")
            }
            guard record.references.isEmpty else {
                throw ConvoyError(.inUse, "volume \(name) is in use by \(record.references.count) mount(s); stop "
                    + "the containers using it (or `convoy umount \(name)`) first")
            }
            guard !deletedElsewhere(record) else {
                try store.delete(name)
                throw .notFound("volume \(name) was deleted on another host")
            }
            guard busy[name] == nil else {
                throw ConvoyError(.inUse, "volume \(name) is being snapshotted; "
                    + "try again when the job ends (`convoy job list`)")
            }
            if fromDocker && ignoreDockerDelete {
                logger.info("kept volume on Docker's remove (--ignore-docker-delete)", metadata: ["volume": "\(name)"])
                return
            }
            try refuseIfMountedElsewhere(record)
            let driver = try self.driver(for: record)
            for hook in hooks { try await hook.willDelete(record) }
            try store.update(name, state: .deleting)
            Failpoint.reach("delete-marked")
            // Out of the shared catalog first: no other host starts using what is about to go. If the catalog
            // cannot be changed, nothing is deleted (a `deleting` record would have its data deleted at start).
            do throws(ConvoyError) {
                try shared[record.driver]?.forget(name)
            } catch {
                try? store.update(name, state: .ready)
                throw error
            }
            do {
                try await timed(driver, "delete") { () throws(ConvoyError) in
                    try await driver.deleteVolume(record.driverVolume)
                }
            } catch {
                try? store.update(name, state: .ready)
                throw ConvoyError.wrap(error, context: "cannot delete volume \(name)", as: .driverFailure)
            }
            Failpoint.reach("delete-driver-done")
            try store.delete(name)
            Failpoint.reach("delete-recorded")
            for hook in hooks { await hook.didDelete(name) }
            logger.info("deleted volume", metadata: ["volume": "\(name)"])
        }
    }

    /// Adds reference `referenceID` and returns the mountpoint; mounts on the first reference. Repeating a Mount
    /// with the same ID is harmless.
    public func mount(_ name: String, referenceID: String) async throws(ConvoyError) -> String {
        try ObjectName.validate(name)
        return try await withVolumeLock(name) { () async throws(ConvoyError) -> String in
            let record = try readyVolume(name)
            let driver = try self.driver(for: record)
            let mountpoint: String
            if let override = try await hookMountpoint(for: record) {
                mountpoint = override
            } else if let existing = record.mountpoint, !record.references.isEmpty,
                      !driver.mountsVolumes || driver.isMounted(record.driverVolume) {
                mountpoint = existing
            } else {
                do {
                    mountpoint = try await timed(driver, "mount") { () throws(ConvoyError) in
                        try await driver.mountVolume(record.driverVolume)
                    }
                } catch {
                    throw ConvoyError.wrap(error, context: "cannot mount volume \(name)", as: .driverFailure)
                }
            }
            Failpoint.reach("mount-driver-done")
            let count = try store.addReference(referenceID, to: name, mountpoint: mountpoint)
            try publishReferences(of: name, driver: record.driver)
            logger.debug("mount", metadata: ["volume": "\(name)", "id": "\(referenceID)", "references": "\(count)"])
            return mountpoint
        }
    }

    /// Drops reference `referenceID`; unmounts when it was the last. An unknown ID is harmless.
    public func unmount(_ name: String, referenceID: String) async throws(ConvoyError) {
        try ObjectName.validate(name)
        try await withVolumeLock(name) { () async throws(ConvoyError) in
            let record = try readyVolume(name)
            let (existed, remaining) = try store.removeReference(referenceID, from: name)
            guard existed else {
                logger.debug("unmount for unknown reference ignored",
                             metadata: ["volume": "\(name)", "id": "\(referenceID)"])
                return
            }
            try publishReferences(of: name, driver: record.driver)
            guard remaining == 0 else { return }
            Failpoint.reach("unmount-reference-removed")
            let driver = try self.driver(for: record)
            do {
                try await timed(driver, "unmount") { () throws(ConvoyError) in
                    try await driver.unmountVolume(record.driverVolume)
                }
            } catch {
                // The reference is gone; reconciliation retries the unmount at the next start.
                throw ConvoyError.wrap(error, context: "cannot unmount volume \(name)", as: .driverFailure)
            }
            for hook in hooks {
                switch await hook.lastReferenceDropped(record) {
                case .unchanged: break
                case .changed(let info): try store.update(name, state: .ready, driverInfo: info)
                case .whenIdle(let work): Task { _ = await self.whenIdle(name, work) }
                }
            }
            try store.setMountpoint(nil, of: name)
        }
    }

    private func hookMountpoint(for record: VolumeRecord) async throws(ConvoyError) -> String? {
        for hook in hooks {
            if let mountpoint = try await hook.mountpoint(for: record) { return mountpoint }
        }
        return nil
    }

    /// Whether a hook attaches this volume again at start before it can be mounted.
    nonisolated func reattachedByHooks(_ record: VolumeRecord) -> Bool {
        hooks.contains { $0.reattachesAtStart(record) }
    }

    // MARK: Helpers

    func readyVolume(_ name: String) throws(ConvoyError) -> VolumeRecord {
        guard let record = try localOrAdopted(name) else {
            throw .notFound("no volume named '\(name)'; create it first")
        }
        if record.references.isEmpty && deletedElsewhere(record) {
            try store.delete(name)
            logger.info("forgot a volume deleted on another host", metadata: ["volume": "\(name)", "host": "\(hostID)"])
            throw .notFound("volume \(name) was deleted on another host")
        }
        guard record.state == .ready else { throw .conflict("volume \(name) is being \(record.state.participle)") }
        return record
    }

    func driver(for record: VolumeRecord) throws(ConvoyError) -> any VolumeDriver {
        guard let driver = drivers[record.driver] else {
            throw ConvoyError(.unavailable, "volume \(record.name) belongs to driver \(record.driver), which this "
                + "daemon does not run; restart it with --drivers \(record.driver)")
        }
        return driver
    }

    private func withVolumeLockNoThrow<T>(_ name: String, _ body: () async -> T) async -> T {
        if !locks.tryAcquire(name) {
            await withCheckedContinuation { continuation in locks.enqueue(name, continuation) }
        }
        defer { locks.release(name) }
        return await body()
    }

    func withVolumeLock<T>(_ name: String, _ body: () async throws(ConvoyError) -> T) async throws(ConvoyError) -> T {
        if !locks.tryAcquire(name) {
            await withCheckedContinuation { continuation in locks.enqueue(name, continuation) }
        }
        defer { locks.release(name) }
        return try await body()
    }

    static func timestamp(_ date: Date = Date()) -> String {
        date.formatted(.iso8601)
    }
}
