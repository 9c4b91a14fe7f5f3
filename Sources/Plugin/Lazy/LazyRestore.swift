import BackupFS
import Backupstore
import ConvoyCore
import Drivers
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Lazily restored volumes (vfs and other directory drivers): usable at once, served from the backup while they
/// hydrate. Each one is three mounts' worth of state:
/// - `<root>/lazy/<name>/backup`: the backup's tree through FUSE (BackupFS), read-only;
/// - `<root>/lazy/<name>/merged`: an overlay with that tree below and the volume's directory above — the
///   volume's mountpoint while it is lazy; writes land in the volume's directory;
/// - `<data dir>/../.convoy-work/<name>`: overlayfs's work directory, beside the data (same filesystem).
/// A hydration job copies every entry up; when it is done and the volume has no references, the mounts go, the
/// overlay's traces are cleaned from the directory, and the volume is a plain directory again.
///
/// Whether a volume is lazy is in its driver info (`LazyBackup`), so a restart finds and resumes it.
public actor LazyRestore: VolumeLifecycleHooks {
    static let backupKey = "LazyBackup"

    private let root: String
    private let volumes: VolumeService
    private let jobs: JobManager
    private let stores: StoreFactory
    private let logger: Logger
    private let mountOptions: BackupMountOptions
    private let hydrationPause: Duration
    private var active: [String: Attached] = [:]
    /// Threads for hydration's copy-ups, shared by every lazy volume.
    private let copyThreads = BlockingIOPool(threads: Hydrator.width)

    struct Attached {
        var mount: BackupMount
        var merged: String
        var upper: String
        var work: String
        var manifest: Manifest
        var progress: HydrationProgress
        var hydration: Task<Void, Never>?
        let stop = StopFlag()
        var jobID: String?
        var state: ClientAPI.Hydration.State = .hydrating
        var error: String?
        /// Mounts gone and the directory cleaned; forgotten once the volume's record says it is plain (the
        /// record is updated by VolumeService after `finish` returns, so until then this still answers).
        var finished = false
        var url: String
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

    /// Creates volume `name` over backup `url`, mounted at once, and starts its hydration.
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
        guard manifest.kind == .files else {
            throw ConvoyError.invalid("backup \(backup.backupID) is a block backup: lazy restore of block backups is not implemented yet; restore it without lazy")
        }
        var options = options
        if options["size"] == nil, manifest.volumeSize > 0 { options["size"] = "\(manifest.volumeSize)" }
        let record = try await volumes.create(name: name, options: options, mustBeNew: true) { driver, volume throws(ConvoyError) in
            let upper = try BackupService.directory(of: volume, driver: driver)
            try await self.attach(name: name, upper: upper, manifest: manifest, repository: repository, url: backup.url, fresh: true)
            return [Self.backupKey: backup.url]
        }
        startHydration(name)
        return record
    }

    /// Mounts the backup and the overlay for volume `name`. `fresh`: the volume's directory is new, so it takes
    /// the backup root's owner, mode and times.
    private func attach(name: String, upper: String, manifest: Manifest, repository: BackupRepository, url: String,
                        fresh: Bool) async throws(ConvoyError) {
        let base = try PathGuard.child(of: root, named: name)
        let lower = base + "/backup"
        let merged = base + "/merged"
        let upperParent = String(upper[..<(upper.lastIndex(of: "/") ?? upper.endIndex)])
        let work = try PathGuard.child(of: upperParent + "/.convoy-work", named: name)
        detachLeftovers(lower: lower, merged: merged)
        for directory in [lower, merged, work] { try FileSystem.makeDirectory(directory, mode: 0o700) }
        if fresh, let top = manifest.entries.first(where: { $0.path.isEmpty }) {
            try FileRestorer.applyMetadata(top, at: upper)
        }
        let logger = self.logger
        let mount = try BackupMount.mount(manifest: manifest, repository: repository, at: lower, options: mountOptions) { line in
            logger.error("lazy volume \(name): \(line)")
        }
        do {
            try await Overlay.mount(lower: lower, upper: upper, work: work, at: merged)
        } catch {
            try? mount.unmount()
            throw ConvoyError.wrap(error, context: "cannot build the overlay of lazy volume \(name)", as: .driverFailure)
        }
        active[name] = Attached(mount: mount, merged: merged, upper: upper, work: work, manifest: manifest,
                                progress: HydrationProgress(manifest: manifest), url: url)
    }

    /// What a crash left: an overlay and a FUSE mount that no longer answer.
    private func detachLeftovers(lower: String, merged: String) {
        if MountInfo.isMountPoint(merged) { Overlay.unmount(merged, detach: true) }
        if MountInfo.isMountPoint(lower) { BackupMount.detach(lower) }
    }

    // MARK: Hydration

    private func startHydration(_ name: String) {
        guard let attached = active[name] else { return }
        let hydrator = Hydrator(manifest: attached.manifest, merged: attached.merged, upper: attached.upper,
                                pause: hydrationPause, stop: attached.stop, threads: copyThreads)
        let progress = attached.progress
        let (jobs, logger) = (self.jobs, self.logger)
        let task = Task {
            do throws(ConvoyError) {
                // The volume's state changes inside the job, so a client that saw the job end sees its outcome.
                let job = try await jobs.start(kind: "hydrate", target: name) { report throws(ConvoyError) in
                    progress.follow(report)
                    do throws(ConvoyError) {
                        try await hydrator.run(progress: progress)
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

    /// Hydration is complete: finish the volume now if nothing uses it, else at its last unmount.
    private func hydrated(_ name: String) async {
        guard active[name] != nil else { return }
        active[name]?.state = .complete
        logger.info("lazy volume \(name) is hydrated")
        _ = await volumes.whenIdle(name) { record in await self.finish(record) }
    }

    /// Drops the overlay and the backup's mount and cleans the directory; nil (and nothing changed) when the
    /// overlay is still busy.
    private func finish(_ record: VolumeRecord) -> [String: String]? {
        let name = record.name
        guard let attached = active[name], attached.state == .complete, !attached.finished else { return nil }
        let code = Overlay.unmount(attached.merged, detach: false)
        guard code == 0 || code == EINVAL else {
            logger.warning("lazy volume \(name) is hydrated but its overlay is busy (\(String(cString: strerror(code)))); finishing at its next unmount")
            return nil
        }
        do {
            try attached.mount.unmount()
            let cleaned = try Overlay.cleanUpper(attached.upper)
            let relinked = Self.relinkHardLinks(attached.manifest, in: attached.upper)
            try? FileSystem.removeTree(attached.work)
            try? FileSystem.removeTree(try PathGuard.child(of: root, named: name))
            logger.info("lazy volume \(name) is now a plain directory", metadata: [
                "whiteouts": "\(cleaned.whiteouts)", "overlayAttributes": "\(cleaned.attributes)", "hardLinks": "\(relinked)"])
        } catch {
            logger.error("cannot finish lazy volume \(name): \(error.message)")
            return nil
        }
        active[name]?.finished = true
        var info = record.driverInfo
        info[Self.backupKey] = nil
        return info
    }

    /// overlayfs (without `index`) copies each name of a hard link up as its own file; links whose files are
    /// still as in the backup become links again.
    static func relinkHardLinks(_ manifest: Manifest, in upper: String) -> Int {
        var byPath: [String: Entry] = [:]
        for entry in manifest.entries where entry.type == .file { byPath[entry.path] = entry }
        var relinked = 0
        for entry in manifest.entries where entry.type == .hardlink {
            guard let targetPath = entry.target, let original = byPath[targetPath] else { continue }
            let path = upper + "/" + entry.path
            let target = upper + "/" + targetPath
            var a = stat(), b = stat()
            guard lstat(path, &a) == 0, lstat(target, &b) == 0, a.st_mode & S_IFMT == S_IFREG, b.st_mode & S_IFMT == S_IFREG,
                  a.st_ino != b.st_ino, unchanged(a, original), unchanged(b, original) else { continue }
            // Relinking changes the directory's times; it keeps the ones it had (the backup's, or the user's).
            let parent = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
            var before = stat()
            guard lstat(parent, &before) == 0 else { continue }
            let temporary = path + ".convoy-relink"
            guard link(target, temporary) == 0 else { continue }
            if rename(temporary, path) == 0 { relinked += 1 } else { unlink(temporary) }
            var times = [before.st_atim, before.st_mtim]
            utimensat(AT_FDCWD, parent, &times, AT_SYMLINK_NOFOLLOW)
        }
        return relinked
    }

    private static func unchanged(_ info: stat, _ entry: Entry) -> Bool {
        UInt64(info.st_size) == entry.size && Int64(info.st_mtim.tv_sec) == entry.mtimeSeconds
            && Int64(info.st_mtim.tv_nsec) == entry.mtimeNanoseconds
    }

    // MARK: Hooks (called by VolumeService under the volume's lock)

    public func mountpoint(for record: VolumeRecord) async throws(ConvoyError) -> String? {
        guard Self.isLazy(record) else { return nil }
        guard let attached = active[record.name], !attached.finished else {
            throw ConvoyError(.unavailable, "lazy volume \(record.name) is not attached to its backup \(record.driverInfo[Self.backupKey] ?? ""); see the daemon's log, fix the store, and restart the daemon")
        }
        return attached.merged
    }

    public func lastReferenceDropped(_ record: VolumeRecord) async -> [String: String]? {
        guard Self.isLazy(record), active[record.name]?.state == .complete else { return nil }
        return finish(record)
    }

    public func willDelete(_ record: VolumeRecord) async throws(ConvoyError) {
        guard Self.isLazy(record) || active[record.name] != nil else { return }
        try await detach(record.name)
    }

    private func detach(_ name: String) async throws(ConvoyError) {
        if let attached = active[name] {
            attached.stop.stop()
            attached.hydration?.cancel()
            Overlay.unmount(attached.merged, detach: true)
            try? attached.mount.unmount()
            try? FileSystem.removeTree(attached.work)
            active[name] = nil
        }
        let base = try PathGuard.child(of: root, named: name)
        detachLeftovers(lower: base + "/backup", merged: base + "/merged")
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
                let upper = try BackupService.directory(of: record.driverVolume, driver: driver)
                try await attach(name: name, upper: upper, manifest: manifest, repository: repository, url: url, fresh: false)
                startHydration(name)
                repairs.append("lazy volume \(name): attached to \(url) again; hydration resumes")
            } catch {
                repairs.append("lazy volume \(name): cannot attach to \(url): \(error.message); mounts of it fail until the store is reachable and the daemon restarts")
            }
        }
        let known = Set(lazy.map(\.name))
        for name in (PosixFile.entries(in: root) ?? []).map(\.name) where !known.contains(name) {
            try? await detach(name)
            repairs.append("lazy volume \(name): no longer exists; removed its leftover mounts")
        }
        return repairs
    }

    /// At stop: the FUSE server goes with the daemon, so its mounts (and the overlays above them) go too; the
    /// next start re-attaches the volumes.
    public func stopAll() {
        for (name, attached) in active {
            attached.stop.stop()
            attached.hydration?.cancel()
            Overlay.unmount(attached.merged, detach: true)
            do { try attached.mount.unmount() } catch {
                logger.warning("cannot unmount the backup of lazy volume \(name): \(error.message)")
            }
        }
        active = [:]
    }

    /// The directory to read a volume's current content from: the overlay while it is lazy.
    public func readableDirectory(of name: String) -> String? {
        guard let attached = active[name], !attached.finished else { return nil }
        return attached.merged
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
