import Backupstore
import ConvoyCore
import Drivers
import Logging

/// Lazy restores: a volume created from a backup that is usable at once, served from the backup while it
/// hydrates (docs/design.md, "Lazy restore"). Creates the volume through the restore planner, attaches it to its
/// backup (`LazyVolumes`), starts its hydration, and finishes it through the volume service once it is hydrated
/// and idle. At start it attaches every lazy volume again. Calls run one way: this → VolumeService, LazyVolumes.
public struct LazyRestore: Sendable {
    let volumes: VolumeService
    let attached: LazyVolumes
    let planner: RestorePlanner
    let jobs: JobManager
    let stores: StoreFactory

    public init(volumes: VolumeService, attached: LazyVolumes, planner: RestorePlanner, jobs: JobManager,
                stores: StoreFactory) {
        self.volumes = volumes
        self.attached = attached
        self.planner = planner
        self.jobs = jobs
        self.stores = stores
    }

    /// Creates volume `name` over backup `url`, usable at once, and starts its hydration.
    public func create(name: String, backup url: String,
                       options: [String: String]) async throws(ConvoyError) -> VolumeRecord {
        if let driver = DriverRegistry.nativeBackupDriverName(forURL: url) {
            throw .invalid("'\(url)' is a snapshot of the \(driver) driver's own service: restore it without lazy "
                + "(the service itself loads a new volume's blocks on first read)")
        }
        let backup = try BackupURL.parse(url)
        let repository = try await stores.repository(backup.destination, for: .existingBackups)
        let manifest: Manifest
        do {
            manifest = try await repository.manifest(volume: backup.volume, backup: backup.backupID)
        } catch where error.kind == .notFound {
            throw ConvoyError(.notFound, "\(error.message); a lazy restore needs a convoy backup (for a Convoy 0.5 "
                + "backup, restore without lazy)")
        }
        let attached = self.attached
        let record: VolumeRecord
        if manifest.kind == .blocks {
            record = try await planner.createForImage(name: name, options: options, recordedSize: manifest.volumeSize,
                                                      what: "backup \(manifest.id)") {
                driver, volume throws(ConvoyError) in
                var info = try await attached.attachImage(name: name, driver: driver, volume: volume,
                                                          manifest: manifest, repository: repository, url: backup.url)
                info[LazyVolumes.backupKey] = backup.url
                info[VolumeRecord.madeFromKey] = backup.url
                return info
            }
        } else {
            record = try await planner.createForFiles(name: name, options: options,
                                                      recordedSize: manifest.volumeSize) {
                _, driver, volume throws(ConvoyError) in
                try await attached.attachOverlay(name: name, volume: volume, driver: driver, manifest: manifest,
                                                 repository: repository, url: backup.url, fresh: true)
                return [LazyVolumes.backupKey: backup.url, VolumeRecord.madeFromKey: backup.url]
            }
        }
        await startHydration(name)
        return record
    }

    /// Runs the volume's hydration as a job; once it has fetched everything, the volume is finished as soon as
    /// it is idle (else at its last unmount: `LazyVolumes`' hook).
    private func startHydration(_ name: String) async {
        guard let (run, progress) = await attached.hydration(for: name) else { return }
        let (volumes, attached, jobs) = (self.volumes, self.attached, self.jobs)
        let task = Task {
            do throws(ConvoyError) {
                // The volume's state changes inside the job, so a client that saw the job end sees its outcome.
                let job = try await jobs.start(kind: "hydrate", target: name) { report throws(ConvoyError) in
                    progress.follow(report)
                    do throws(ConvoyError) {
                        try await run()
                    } catch {
                        await attached.hydrationFailed(name, error.message)
                        throw error
                    }
                    if await attached.hydrationCompleted(name) {
                        _ = await volumes.whenIdle(name) { record in await attached.finish(record) }
                        if let record = try? volumes.get(name), !LazyVolumes.isLazy(record) {
                            await attached.forgetFinished(name)
                        }
                    }
                    return ["Volume": name]
                }
                await attached.hydrationJob(name, id: job.id)
            } catch {
                await attached.hydrationFailed(name, "cannot start hydrating: \(error.message)")
            }
        }
        await attached.hydrationStarted(name, task: task)
    }

    /// At start: attaches every lazy volume again (after a crash, its old mounts are detached first) and resumes
    /// its hydration; removes leftovers of lazy volumes that no longer exist. Returns one line per repair.
    public func resumeAll() async -> [String] {
        var repairs: [String] = []
        let lazy = ((try? volumes.list()) ?? []).filter(LazyVolumes.isLazy)
        for record in lazy {
            let name = record.name
            guard let url = record.driverInfo[LazyVolumes.backupKey], let driver = volumes.drivers[record.driver] else {
                continue
            }
            if !(driver is any BlockImageDriver), attached.finishWasInterrupted(name) {
                repairs.append(await resumeFinish(record, driver: driver, url: url))
                continue
            }
            do {
                let backup = try BackupURL.parse(url)
                // Allowed when the volume was made; a flag changed since does not cut the volume from its data.
                let repository = try await stores.repository(backup.destination, for: .attachedVolume)
                let manifest = try await repository.manifest(volume: backup.volume, backup: backup.backupID)
                if let blockDriver = driver as? any BlockImageDriver {
                    _ = try await attached.attachImage(name: name, driver: blockDriver, volume: record.driverVolume,
                                                       manifest: manifest, repository: repository, url: url)
                    if let mountpoint = try await volumes.remountIfReferenced(name) {
                        repairs.append("lazy volume \(name): has references; mounted it again at \(mountpoint)")
                    }
                } else {
                    try await attached.attachOverlay(name: name, volume: record.driverVolume, driver: driver,
                                                     manifest: manifest, repository: repository, url: url,
                                                     fresh: false)
                }
                await startHydration(name)
                repairs.append("lazy volume \(name): attached to \(url) again; hydration resumes")
            } catch {
                repairs.append("lazy volume \(name): cannot attach to \(url): \(error.message); mounts of it fail "
                    + "until the store is reachable and the daemon restarts")
            }
        }
        // Connections the keeper held for volumes that are gone or no longer lazy: closed before leftovers go.
        await attached.dropUnclaimedHandoffs()
        for name in await attached.removeLeftovers(keeping: Set(lazy.map(\.name))) {
            repairs.append("lazy volume \(name): no longer exists; removed its leftover mounts")
        }
        return repairs
    }

    /// A file volume whose finish a crash interrupted is finished, not attached again: its overlay would show
    /// again what the finish had begun to remove. Its backup's manifest (for hard links) if the store answers.
    private func resumeFinish(_ record: VolumeRecord, driver: any VolumeDriver, url: String) async -> String {
        let name = record.name
        var found: Manifest?
        if let backup = try? BackupURL.parse(url),
           let repository = try? await stores.repository(backup.destination, for: .attachedVolume) {
            found = try? await repository.manifest(volume: backup.volume, backup: backup.backupID)
        }
        let (attached, manifest) = (self.attached, found)
        _ = await volumes.whenIdle(name) { record in
            await attached.resumeFinish(record, driver: driver, manifest: manifest)
        }
        guard let now = try? volumes.get(name), !LazyVolumes.isLazy(now) else {
            return "lazy volume \(name): its finish was interrupted and cannot be completed now (see the log); "
                + "tried again at the next start"
        }
        await attached.forgetFinished(name)
        return "lazy volume \(name): completed its finish, which a stop had interrupted; it is a plain directory"
    }

    /// How far the volume's hydration is; nil for a volume that is not (or no longer) lazy.
    public func hydration(of name: String) async -> ClientAPI.Hydration? {
        await attached.hydration(of: name, record: try? volumes.get(name))
    }
}
