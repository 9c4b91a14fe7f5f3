import BackupFS
import Backupstore
import ConvoyCore
import Drivers

/// Lazy restore of a block backup into a block-image driver's volume (docs/design.md, "Lazy restore" and
/// "devicemapper"): the backup's `volume.img`, served by BackupFS at `<root>/lazy/<name>/backup`, is the
/// external origin of the volume's device (a thin device), so the volume mounts at once and writes land in the
/// pool. Fetched blocks are kept in `<root>/lazy/<name>/cache`; hydration
/// fetches them all, so the store is soon no longer needed. Finishing copies the blocks the volume never wrote
/// into it and drops the origin.
extension LazyVolumes {
    /// Mounts the backup and makes its image the origin of the volume's device; returns the driver's info.
    func attachImage(name: String, driver: any BlockImageDriver, volume: DriverVolume, manifest: Manifest,
                     repository: BackupRepository, url: String) async throws(ConvoyError) -> [String: String] {
        var options = mountOptions
        options.diskCacheDirectory = try PathGuard.child(of: root, named: name) + "/cache"
        let (mount, _, _) = try mountBackup(name: name, manifest: manifest, repository: repository, options: options)
        let info: [String: String]
        do {
            info = try await driver.attachExternalOrigin(image: mount.mountpoint + "/" + Manifest.imageName, to: volume)
        } catch {
            // An origin device made before the failure goes too (it cannot while a volume's device still uses it).
            try? await driver.removeExternalOrigin(of: name)
            try? mount.unmount()
            throw ConvoyError.wrap(error, context: "cannot attach the backup of lazy volume \(name) as its origin",
                                   as: .driverFailure)
        }
        active[name] = Attached(mount: mount, layout: .externalOrigin(driver), manifest: manifest,
                                progress: HydrationProgress(manifest: manifest), url: url)
        return info
    }

    /// Copies the never-written blocks in (from the disk cache, as hydration fetched them all), drops the origin
    /// and unmounts the backup; nil (nothing changed) on failure, retried at the next unmount or start.
    func finishImage(_ record: VolumeRecord, _ attached: Attached,
                     driver: any BlockImageDriver) async -> [String: String]? {
        let name = record.name
        let finished: ExternalOriginFinish
        do {
            finished = try await driver.finishExternalOrigin(of: record.driverVolume,
                                                             regions: ImageHydrator.regions(of: attached.manifest))
            try attached.mount.unmount()
            try? Filesystem.removeTree(try PathGuard.child(of: root, named: name))
            logger.info("lazy volume \(name) holds all its blocks; its backup is detached",
                        metadata: ["bytesCopied": "\(finished.bytesCopied)"])
        } catch {
            logger.error("cannot finish lazy volume \(name): \(error.message)")
            return nil
        }
        return finished.driverInfo
    }
}
