import BackupFS
import Backupstore
import ConvoyCore
import Drivers
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Lazily restored volumes: usable at once, served from the backup while they hydrate. The backup is mounted
/// through FUSE (BackupFS) at `<root>/lazy/<name>/backup`; what sits on it depends on the backup's kind:
/// - a file backup (vfs and other directory drivers): an overlay with the backup's tree below and the volume's
///   directory above is the volume's mountpoint (`LazyRestore+Overlay`);
/// - a block backup (devicemapper): the backup's image is the external origin of the volume's thin device, which
///   the driver mounts as usual (`LazyRestore+Image`).
/// A hydration job makes the data local; when it is done and the volume has no references, the backup's mount
/// goes and the volume is an ordinary one.
///
/// Whether a volume is lazy is in its driver info (`LazyBackup`), so a restart finds and resumes it.
public actor LazyRestore: VolumeLifecycleHooks {
    static let backupKey = "LazyBackup"

    let root: String
    let volumes: VolumeService
    private let jobs: JobManager
    private let stores: StoreFactory
    let logger: Logger
    let mountOptions: BackupMountOptions
    let hydrationPause: Duration
    var active: [String: Attached] = [:]
    /// Threads for hydration's copy-ups, shared by every lazy file volume.
    let hydrationThreads = BlockingIOPool(threads: Hydrator.width, name: "convoy-copy-up")

    struct Attached {
        var mount: BackupMount
        var layout: Layout
        var manifest: Manifest
        var progress: HydrationProgress
        var hydration: Task<Void, Never>?
        let stop = StopFlag()
        var jobID: String?
        var state: ClientAPI.Hydration.State = .hydrating
        var error: String?
        /// Mounts gone and the volume made ordinary; forgotten once the volume's record says so (the record is
        /// updated by VolumeService after `finish` returns, so until then this still answers).
        var finished = false
        var url: String

        /// Finishing copies the volume's data (blocks never written, a tree kept apart), rather than only
        /// unmounting and tidying.
        var finishingCopies: Bool {
            switch layout {
            case .overlay(_, _, _, let copyTo): copyTo != nil
            case .externalOrigin: true
            }
        }
    }

    enum Layout {
        /// The volume's mountpoint is an overlay: the backup's tree below, the volume's directory above.
        /// `copyTo`: the volume's directory, when the upper layer is kept apart from it (see `upperLayer`).
        case overlay(merged: String, upper: String, work: String, copyTo: String?)
        /// The backup's image is the external origin of the volume's thin device.
        case externalOrigin(DevicemapperDriver)
    }

    public init(root: String, volumes: VolumeService, jobs: JobManager, stores: StoreFactory, logger: Logger,
                mountOptions: BackupMountOptions, hydrationPause: Duration = .zero) {
        self.root = root + "/lazy"
        self.volumes = volumes
        self.jobs = jobs
        self.stores = stores
        self.logger = logger
        self.mountOptions = mountOptions
        self.hydrationPause = hydrationPause
    }

    static func isLazy(_ record: VolumeRecord) -> Bool { record.driverInfo[backupKey] != nil }

    // MARK: Create

    /// Creates volume `name` over backup `url`, usable at once, and starts its hydration.
    public func create(name: String, backup url: String, options: [String: String]) async throws(ConvoyError) -> VolumeRecord {
        if url.hasPrefix("ebs://") {
            throw .invalid("'\(url)' is an EBS snapshot: restore it without lazy (EBS itself loads a new volume's blocks on first read)")
        }
        let backup = try BackupURL.parse(url)
        let repository = BackupRepository(store: try stores.open(backup.destination))
        let manifest: Manifest
        do {
            manifest = try await repository.manifest(volume: backup.volume, backup: backup.backupID)
        } catch where error.kind == .notFound {
            throw ConvoyError(.notFound, "\(error.message); a lazy restore needs a convoy backup (for a Convoy 0.5 backup, restore without lazy)")
        }
        var options = options
        if options["size"] == nil, manifest.volumeSize > 0 { options["size"] = "\(manifest.volumeSize)" }
        let record: VolumeRecord
        if manifest.kind == .blocks {
            if options["driver"] == nil { options["driver"] = DevicemapperDriver.driverName }
            record = try await volumes.create(name: name, options: options, mustBeNew: true, receivesImage: true) {
                driver, volume throws(ConvoyError) in
                guard let blockDriver = driver as? DevicemapperDriver else {
                    throw ConvoyError.invalid("backup \(manifest.id) is a block backup: restore it with the devicemapper driver")
                }
                var info = try await self.attachImage(name: name, driver: blockDriver, volume: volume, manifest: manifest,
                                                      repository: repository, url: backup.url)
                var attached = volume
                attached.driverInfo.merge(info) { $1 }
                if let filesystem = try await blockDriver.detectFilesystem(attached) { info["FS"] = filesystem }
                info[Self.backupKey] = backup.url
                return info
            }
        } else {
            record = try await volumes.create(name: name, options: options, mustBeNew: true) { driver, volume throws(ConvoyError) in
                try await self.attachOverlay(name: name, volume: volume, driver: driver, manifest: manifest,
                                             repository: repository, url: backup.url, fresh: true)
                return [Self.backupKey: backup.url]
            }
        }
        startHydration(name)
        return record
    }

    /// Mounts the backup's tree at `<root>/lazy/<name>/backup` (after detaching what a crash left there).
    func mountBackup(name: String, manifest: Manifest, repository: BackupRepository,
                     options: BackupMountOptions) throws(ConvoyError) -> (mount: BackupMount, base: String) {
        let base = try PathGuard.child(of: root, named: name)
        let lower = base + "/backup"
        if MountInfo.isMountPoint(base + "/merged") { Overlay.unmount(base + "/merged", detach: true) }
        if MountInfo.isMountPoint(lower) { BackupMount.detach(lower) }
        try FileSystem.makeDirectory(lower, mode: 0o700)
        let logger = self.logger
        let mount = try BackupMount.mount(manifest: manifest, repository: repository, at: lower, options: options) { line in
            logger.error("lazy volume \(name): \(line)")
        }
        return (mount, base)
    }

    // MARK: Hydration

    private func startHydration(_ name: String) {
        guard let attached = active[name] else { return }
        let run: @Sendable (HydrationProgress) async throws(ConvoyError) -> Void
        switch attached.layout {
        case .overlay(let merged, let upper, _, _):
            let hydrator = Hydrator(manifest: attached.manifest, merged: merged, upper: upper, pause: hydrationPause,
                                    stop: attached.stop, threads: hydrationThreads)
            run = { progress throws(ConvoyError) in try await hydrator.run(progress: progress) }
        case .externalOrigin:
            let hydrator = ImageHydrator(manifest: attached.manifest, mount: attached.mount, pause: hydrationPause, stop: attached.stop)
            run = { progress throws(ConvoyError) in try await hydrator.run(progress: progress) }
        }
        let progress = attached.progress
        let (jobs, logger) = (self.jobs, self.logger)
        let task = Task {
            do throws(ConvoyError) {
                // The volume's state changes inside the job, so a client that saw the job end sees its outcome.
                let job = try await jobs.start(kind: "hydrate", target: name) { report throws(ConvoyError) in
                    progress.follow(report)
                    do throws(ConvoyError) {
                        try await run(progress)
                    } catch {
                        await self.failed(name, error.message)
                        throw error
                    }
                    await self.hydrated(name)
                    return ["Volume": name]
                }
                self.setJob(name, job.id)
            } catch {
                logger.error("cannot start hydrating lazy volume \(name): \(error.message)")
                self.failed(name, error.message)
            }
        }
        active[name]?.hydration = task
    }

    private func setJob(_ name: String, _ id: String) { active[name]?.jobID = id }

    private func failed(_ name: String, _ message: String) {
        guard active[name] != nil else { return }
        active[name]?.state = .failed
        active[name]?.error = message
        logger.error("hydration of lazy volume \(name) failed (retried at the next start): \(message)")
    }

    /// Hydration is complete: finish the volume now if nothing uses it, else after its last unmount.
    private func hydrated(_ name: String) async {
        guard active[name] != nil else { return }
        active[name]?.state = .complete
        logger.info("lazy volume \(name) is hydrated")
        _ = await volumes.whenIdle(name) { record in await self.finish(record) }
    }

    /// Makes the hydrated volume ordinary; returns its new driver info, or nil (nothing changed) when it could not.
    private func finish(_ record: VolumeRecord) async -> [String: String]? {
        guard let attached = active[record.name], attached.state == .complete, !attached.finished else { return nil }
        let info: [String: String]?
        switch attached.layout {
        case .overlay: info = await finishOverlay(record, attached)
        case .externalOrigin(let driver): info = await finishImage(record, attached, driver: driver)
        }
        guard var info else { return nil }
        active[record.name]?.finished = true
        info[Self.backupKey] = nil
        return info
    }

    // MARK: Hooks (called by VolumeService under the volume's lock)

    public func mountpoint(for record: VolumeRecord) async throws(ConvoyError) -> String? {
        guard Self.isLazy(record) else { return nil }
        // A block volume mounts through its driver (over its origin, which the driver checks is attached).
        if record.driverInfo[DevicemapperDriver.externalOriginKey] != nil { return nil }
        guard let attached = active[record.name], !attached.finished, case .overlay(let merged, _, _, _) = attached.layout else {
            throw ConvoyError(.unavailable, "lazy volume \(record.name) is not attached to its backup \(record.driverInfo[Self.backupKey] ?? ""); see the daemon's log, fix the store, and restart the daemon")
        }
        return merged
    }

    public func lastReferenceDropped(_ record: VolumeRecord) async -> [String: String]? {
        guard Self.isLazy(record), let attached = active[record.name], attached.state == .complete else { return nil }
        if attached.finishingCopies {
            // Copying data in takes a while: not inside Docker's Unmount call, but right after it.
            let name = record.name
            Task { _ = await self.volumes.whenIdle(name) { record in await self.finish(record) } }
            return nil
        }
        return await finish(record)
    }

    public func willDelete(_ record: VolumeRecord) async throws(ConvoyError) {
        guard Self.isLazy(record) || active[record.name] != nil else { return }
        try await detach(record.name, volume: record.driverVolume)
    }

    /// Stops the volume's hydration and removes everything it had mounted. `volume` nil: a volume that no
    /// longer exists (leftovers of a crash).
    private func detach(_ name: String, volume: DriverVolume?) async throws(ConvoyError) {
        if let attached = active[name] {
            attached.stop.stop()
            attached.hydration?.cancel()
            switch attached.layout {
            case .overlay(let merged, _, let work, _):
                Overlay.unmount(merged, detach: true)
                try? attached.mount.unmount()
                try? FileSystem.removeTree(work)
            case .externalOrigin(let driver):
                // The volume's device goes before its origin, which it holds open.
                if let volume { try await driver.deactivate(volume) }
                try await driver.removeExternalOrigin(of: name)
                try? attached.mount.unmount()
            }
            active[name] = nil
        }
        let base = try PathGuard.child(of: root, named: name)
        if MountInfo.isMountPoint(base + "/merged") { Overlay.unmount(base + "/merged", detach: true) }
        if MountInfo.isMountPoint(base + "/backup") { BackupMount.detach(base + "/backup") }
        try? FileSystem.removeTree(base)
    }

    // MARK: Daemon start and stop

    /// At start: re-attaches every lazy volume (after a crash, its old mounts are detached first) and resumes its
    /// hydration; removes leftovers of lazy volumes that no longer exist. Returns one line per repair.
    public func resumeAll() async -> [String] {
        var repairs: [String] = []
        let records = (try? volumes.list()) ?? []
        let lazy = records.filter(Self.isLazy)
        for record in lazy {
            let name = record.name
            guard let url = record.driverInfo[Self.backupKey], let driver = volumes.drivers[record.driver] else { continue }
            do {
                let backup = try BackupURL.parse(url)
                let repository = BackupRepository(store: try stores.open(backup.destination))
                let manifest = try await repository.manifest(volume: backup.volume, backup: backup.backupID)
                if let blockDriver = driver as? DevicemapperDriver {
                    _ = try await attachImage(name: name, driver: blockDriver, volume: record.driverVolume, manifest: manifest,
                                              repository: repository, url: url)
                    if let mountpoint = try await volumes.remountIfReferenced(name) {
                        repairs.append("lazy volume \(name): has references; mounted it again at \(mountpoint)")
                    }
                } else {
                    try await attachOverlay(name: name, volume: record.driverVolume, driver: driver, manifest: manifest,
                                            repository: repository, url: url, fresh: false)
                }
                startHydration(name)
                repairs.append("lazy volume \(name): attached to \(url) again; hydration resumes")
            } catch {
                repairs.append("lazy volume \(name): cannot attach to \(url): \(error.message); mounts of it fail until the store is reachable and the daemon restarts")
            }
        }
        let known = Set(lazy.map(\.name))
        for name in (PosixFile.entries(in: root) ?? []).map(\.name) where !known.contains(name) {
            for case let driver as DevicemapperDriver in volumes.drivers.values {
                try? await driver.removeExternalOrigin(of: name)
            }
            try? await detach(name, volume: nil)
            repairs.append("lazy volume \(name): no longer exists; removed its leftover mounts")
        }
        return repairs
    }

    /// At stop: the FUSE server goes with the daemon, so its mounts (and the overlays above them) go too; the
    /// next start re-attaches the volumes. A block volume's device stays, but reads of blocks it never wrote fail
    /// until then.
    public func stopAll() {
        for (name, attached) in active {
            attached.stop.stop()
            attached.hydration?.cancel()
            if case .overlay(let merged, _, _, _) = attached.layout { Overlay.unmount(merged, detach: true) }
            do { try attached.mount.unmount() } catch {
                logger.warning("cannot unmount the backup of lazy volume \(name): \(error.message)")
            }
        }
        active = [:]
    }

    /// The directory to read a volume's current content from: the overlay while it is lazy.
    public func readableDirectory(of name: String) -> String? {
        guard let attached = active[name], !attached.finished, case .overlay(let merged, _, _, _) = attached.layout else { return nil }
        return merged
    }

    // MARK: Status

    public func hydration(of name: String) -> ClientAPI.Hydration? {
        guard let attached = active[name] else { return nil }
        if attached.finished, let record = try? volumes.get(name), !Self.isLazy(record) {
            active[name] = nil
            return nil
        }
        let now = attached.progress.current
        return ClientAPI.Hydration(
            state: attached.state, backup: attached.url, bytesDone: now.bytesDone, bytesTotal: now.bytesTotal,
            filesDone: now.filesDone, filesTotal: now.filesTotal, job: attached.jobID, error: attached.error)
    }
}
