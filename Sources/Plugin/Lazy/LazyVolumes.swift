import BackupFS
import Backupstore
import ConvoyCore
import Drivers
import Foundation
import Logging

/// The lazily restored volumes attached to their backups, and what that adds to their life cycle (a volume
/// hook). The backup is mounted through FUSE (BackupFS) at `<root>/lazy/<name>/backup`; what sits on it depends
/// on the backup's kind:
/// - a file backup (directory-backed drivers): an overlay with the backup's tree below and the volume's
///   directory above is the volume's mountpoint (`LazyVolumes+Overlay`);
/// - a block backup (block-image drivers): the backup's image is the external origin of the volume's device,
///   which the driver mounts as usual (`LazyVolumes+Image`).
/// When hydration is complete and the volume has no references, the backup's mount goes and the volume is an
/// ordinary one. Whether a volume is lazy is in its driver info (`backupKey`), so a restart finds it again.
/// This actor calls nothing but the drivers and its mounts; `LazyRestore` drives it (hydration jobs, finishing).
public actor LazyVolumes: VolumeLifecycleHooks {
    static let backupKey = "LazyBackup"

    /// `<root>/lazy`.
    let root: String
    let drivers: [String: any VolumeDriver]
    let logger: Logger
    let mountOptions: BackupMountOptions
    let hydrationPause: Duration
    /// The FUSE keeper, which keeps lazy file volumes' backup mounts alive across restarts; nil: they go with
    /// the daemon (`--fuse-handoff-timeout 0`).
    let handoff: FuseHandoff?
    /// `--metrics-per-volume`: each volume's mount counted under its name too; nil: per kind only.
    let perVolumeMounts: PerVolumeMounts?
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
        /// Once finished, the volume is forgotten when its record says so (VolumeService records the new driver
        /// info after `finish` returns, so until then this still answers).
        var lifecycle = LazyLifecycle()
        var url: String
        /// The FUSE keeper holds a copy of the backup mount's connection: a stop leaves the mounts for the next
        /// daemon instead of unmounting them.
        var kept = false

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
        /// `copyTo`: the volume's directory, when the upper layer is kept apart from it (see `attachOverlay`).
        case overlay(merged: String, upper: String, work: String, copyTo: String?)
        /// The backup's image is the external origin of the volume's device.
        case externalOrigin(any BlockImageDriver)
    }

    init(root: String, drivers: [any VolumeDriver], logger: Logger, mountOptions: BackupMountOptions,
         hydrationPause: Duration = .zero, handoff: FuseHandoff? = nil, perVolumeMounts: PerVolumeMounts? = nil) {
        self.handoff = handoff
        self.perVolumeMounts = perVolumeMounts
        self.root = root + "/lazy"
        self.drivers = Dictionary(drivers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.logger = logger
        self.mountOptions = mountOptions
        self.hydrationPause = hydrationPause
    }

    static func isLazy(_ record: VolumeRecord) -> Bool { record.driverInfo[backupKey] != nil }

    /// Mounts the backup's tree at `<root>/lazy/<name>/backup` (after detaching what a crash left there).
    /// `adopting`: serve again the mount an earlier daemon left there when the FUSE keeper held it (`adopted`).
    func mountBackup(name: String, manifest: Manifest, repository: BackupRepository, options: BackupMountOptions,
                     adopting: Bool = false) throws(ConvoyError) -> (mount: BackupMount, base: String, adopted: Bool) {
        let base = try PathGuard.child(of: root, named: name)
        let lower = base + "/backup"
        var options = options
        if let perVolumeMounts { options.observer = perVolumeMounts.observer(for: name, base: options.observer) }
        if adopting, let mount = adopt(name: name, at: lower, manifest: manifest, repository: repository,
                                       options: options) {
            return (mount, base, true)
        }
        if MountInfo.isMountPoint(base + "/merged") { Overlay.unmount(base + "/merged", detach: true) }
        if MountInfo.isMountPoint(lower) { BackupMount.detach(lower) }
        try Filesystem.makeDirectory(lower, mode: 0o700)
        let logger = self.logger
        let mount = try BackupMount.mount(manifest: manifest, repository: repository, at: lower,
                                          options: options) { line in
            logger.error("lazy volume \(name): \(line)")
        }
        return (mount, base, false)
    }

    /// The earlier daemon's mount at `lower`, served again, when the keeper held its connection and the mount
    /// table still shows it there; else nil, with a held connection failed and detached (nothing may wait on it).
    private func adopt(name: String, at lower: String, manifest: Manifest, repository: BackupRepository,
                       options: BackupMountOptions) -> BackupMount? {
        guard let held = handoff?.take(lower) else { return nil }
        guard let kernel = BackupMount.mountTableEntry(at: lower),
              "\(kernel.major):\(kernel.minor)" == held.device else {
            close(held.descriptor)
            handoff?.drop(lower)
            return nil
        }
        let logger = self.logger
        do throws(ConvoyError) {
            let mount = try BackupMount.adopt(manifest: manifest, repository: repository, at: lower,
                                              device: held.descriptor, options: options) { line in
                logger.error("lazy volume \(name): \(line)")
            }
            logger.info("lazy volume \(name): serving its backup's mount again (kept by the FUSE keeper)")
            return mount
        } catch {
            logger.warning("lazy volume \(name): cannot serve its earlier mount (\(error.message)); mounting afresh")
            BackupMount.abandon(lower)
            handoff?.drop(lower)
            return nil
        }
    }

    // MARK: Hydration

    /// The hydration of an attached volume, for `LazyRestore` to run as a job: what fetches its data, and the
    /// progress that work reports. Nil when the volume is not attached.
    func hydration(for name: String) -> (run: @Sendable () async throws(ConvoyError) -> Void,
                                         progress: HydrationProgress)? {
        guard let attached = active[name] else { return nil }
        let progress = attached.progress
        switch attached.layout {
        case .overlay(let merged, let upper, _, _):
            let hydrator = Hydrator(manifest: attached.manifest, merged: merged, upper: upper, pause: hydrationPause,
                                    stop: attached.stop, threads: hydrationThreads)
            return ({ () throws(ConvoyError) in try await hydrator.run(progress: progress) }, progress)
        case .externalOrigin:
            let hydrator = ImageHydrator(manifest: attached.manifest, mount: attached.mount, pause: hydrationPause,
                                         stop: attached.stop)
            return ({ () throws(ConvoyError) in try await hydrator.run(progress: progress) }, progress)
        }
    }

    /// Keeps the task running the volume's hydration (cancelled when it is detached) and its job; a volume
    /// detached meanwhile has its task cancelled at once.
    func hydrationStarted(_ name: String, task: Task<Void, Never>) {
        guard active[name] != nil else { return task.cancel() }
        active[name]?.hydration = task
    }

    func hydrationJob(_ name: String, id: String) { active[name]?.jobID = id }

    func hydrationFailed(_ name: String, _ message: String) {
        guard active[name] != nil else { return }
        active[name]?.lifecycle.hydrationFailed(message)
        logger.error("hydration of lazy volume \(name) failed (retried at the next start): \(message)")
    }

    /// True when the volume has just become hydrated (it may be finished now).
    func hydrationCompleted(_ name: String) -> Bool {
        guard active[name]?.lifecycle.hydrationCompleted() == true else { return false }
        logger.info("lazy volume \(name) is hydrated")
        return true
    }

    /// Makes the hydrated volume ordinary; returns its new driver info, or nil (nothing changed) when it could
    /// not (not hydrated, finished already, or its mounts busy).
    func finish(_ record: VolumeRecord) async -> [String: String]? {
        guard let attached = active[record.name], attached.lifecycle.mayFinish else { return nil }
        let info: [String: String]?
        switch attached.layout {
        case .overlay: info = await finishOverlay(record, attached)
        case .externalOrigin(let driver): info = await finishImage(record, attached, driver: driver)
        }
        guard var info else { return nil }
        active[record.name]?.lifecycle.finished()
        info[Self.backupKey] = nil
        return info
    }

    // MARK: VolumeLifecycleHooks (called by VolumeService under the volume's lock)

    public func mountpoint(for record: VolumeRecord) async throws(ConvoyError) -> String? {
        guard Self.isLazy(record) else { return nil }
        // A block volume mounts through its driver (over its origin, which the driver checks is attached).
        if let driver = drivers[record.driver] as? any BlockImageDriver, driver.hasExternalOrigin(record.driverVolume) {
            return nil
        }
        if let attached = active[record.name], attached.lifecycle.isFinishing {
            throw ConvoyError(.unavailable, "lazy volume \(record.name) is being made a plain directory "
                + "(\(attached.lifecycle.error ?? "in progress")); mount it again in a moment, or after the daemon "
                + "restarts")
        }
        guard let merged = readableDirectory(of: record.name) else {
            throw ConvoyError(.unavailable, "lazy volume \(record.name) is not attached to its backup "
                + "\(record.driverInfo[Self.backupKey] ?? ""); see the daemon's log, fix the store, and restart "
                + "the daemon")
        }
        return merged
    }

    public func lastReferenceDropped(_ record: VolumeRecord) async -> AfterLastReference {
        guard Self.isLazy(record), let attached = active[record.name] else { return .unchanged }
        switch attached.lifecycle.atLastUnmount(finishingCopies: attached.finishingCopies) {
        case .stayLazy: return .unchanged
        // Copying data in takes a while: not inside Docker's Unmount call, but right after it.
        case .finishWhenIdle: return .whenIdle { record in await self.finish(record) }
        case .finishNow: return await finish(record).map { .changed(driverInfo: $0) } ?? .unchanged
        }
    }

    public func willDelete(_ record: VolumeRecord) async throws(ConvoyError) {
        guard Self.isLazy(record) || active[record.name] != nil else { return }
        try await detach(record.name, volume: record.driverVolume)
    }

    public nonisolated func reattachesAtStart(_ record: VolumeRecord) -> Bool { Self.isLazy(record) }

    // MARK: Detaching

    /// Stops the volume's hydration and removes everything it had mounted. `volume` nil: a volume that no
    /// longer exists (leftovers of a crash).
    func detach(_ name: String, volume: DriverVolume?) async throws(ConvoyError) {
        if let attached = active[name] {
            attached.stop.stop()
            attached.hydration?.cancel()
            switch attached.layout {
            case .overlay(let merged, _, let work, _):
                Overlay.unmount(merged, detach: true)
                handoff?.drop(attached.mount.mountpoint)
                try? attached.mount.unmount()
                try? Filesystem.removeTree(work)
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
        try? Filesystem.removeTree(base)
    }

    /// At start: removes what lazy volumes that no longer exist left (mounts, origins); returns their names.
    func removeLeftovers(keeping known: Set<String>) async -> [String] {
        var removed: [String] = []
        for name in (PosixFile.entries(in: root) ?? []).map(\.name) where !known.contains(name) {
            for case let driver as any BlockImageDriver in drivers.values {
                try? await driver.removeExternalOrigin(of: name)
            }
            try? await detach(name, volume: nil)
            removed.append(name)
        }
        return removed
    }

    /// At stop: the FUSE server goes with the daemon, so its mounts (and the overlays above them) go too; the
    /// next start re-attaches the volumes. A block volume's device stays, but reads of blocks it never wrote fail
    /// until then.
    public func stopAll() {
        for (name, attached) in active {
            attached.stop.stop()
            attached.hydration?.cancel()
            // The keeper holds the backup's connection: the mounts stay, the next daemon serves them again, and
            // reads meanwhile wait instead of failing.
            if attached.kept, case .overlay = attached.layout { continue }
            if case .overlay(let merged, _, _, _) = attached.layout { Overlay.unmount(merged, detach: true) }
            do { try attached.mount.unmount() } catch {
                logger.warning("cannot unmount the backup of lazy volume \(name): \(error.message)")
            }
        }
        active = [:]
    }

    // MARK: Status

    /// The directory to read a volume's current content from: the overlay while it is lazy.
    public func readableDirectory(of name: String) -> String? {
        guard let attached = active[name], !attached.lifecycle.isFinished, !attached.lifecycle.isFinishing,
              case .overlay(let merged, _, _, _) = attached.layout else { return nil }
        return merged
    }

    /// `record`: the volume's record read just now (nil when it cannot be read); a finished volume whose record
    /// no longer says lazy is forgotten.
    func hydration(of name: String, record: VolumeRecord?) -> ClientAPI.Hydration? {
        guard let attached = active[name] else { return nil }
        if attached.lifecycle.isFinished, let record, !Self.isLazy(record) {
            forgetFinished(name)
            return nil
        }
        let now = attached.progress.current
        return ClientAPI.Hydration(
            state: attached.lifecycle.state, backup: attached.url, bytesDone: now.bytesDone,
            bytesTotal: now.bytesTotal, filesDone: now.filesDone, filesTotal: now.filesTotal, job: attached.jobID,
            error: attached.lifecycle.error)
    }
}

extension LazyVolumes {
    func dropUnclaimedHandoffs() { handoff?.dropUnclaimed() }

    /// Each hydrating lazy volume's bytes done and to do (metrics with `--metrics-per-volume`).
    func hydrationByVolume() -> [String: (done: UInt64, total: UInt64)] {
        active.filter { !$0.value.lifecycle.isFinished }.mapValues { attached in
            let now = attached.progress.current
            return (now.bytesDone, now.bytesTotal)
        }
    }

    /// Lazy volumes still attached to their backups, and their hydration's bytes done and to do, summed (metrics).
    func hydrationTotals() -> (volumes: Int, bytesDone: UInt64, bytesTotal: UInt64) {
        active.values.filter { !$0.lifecycle.isFinished }.reduce((0, 0, 0)) { sum, attached in
            let now = attached.progress.current
            return (sum.0 + 1, sum.1 + now.bytesDone, sum.2 + now.bytesTotal)
        }
    }
}
