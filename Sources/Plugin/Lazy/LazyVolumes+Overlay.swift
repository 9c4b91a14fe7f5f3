import BackupFS
import Backupstore
import ConvoyCore
import Drivers
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Lazy restore of a file backup into a directory volume. Its mounts:
/// - `<root>/lazy/<name>/backup`: the backup's tree through FUSE, read-only;
/// - `<root>/lazy/<name>/merged`: an overlay with that tree below and the volume's directory above — the
///   volume's mountpoint while it is lazy; writes land in the volume's directory;
/// - `<data dir>/../.convoy-work/<name>`: overlayfs's work directory, beside the data (same filesystem).
/// Hydration copies every entry up; finishing drops the mounts and cleans the overlay's traces from the directory.
extension LazyVolumes {
    /// Mounts the backup and the overlay for volume `name`. `fresh`: the volume is new, so its directory takes
    /// the backup root's owner, mode and times.
    func attachOverlay(name: String, volume: DriverVolume, driver: any VolumeDriver, manifest: Manifest,
                       repository: BackupRepository, url: String, fresh: Bool) async throws(ConvoyError) {
        let (directory, upper, work, apart) = try overlayPaths(name: name, volume: volume, driver: driver)
        if apart { try Filesystem.makeDirectory(upper, mode: 0o755) }
        // A new volume of an old name must not inherit the record of an earlier one's finish.
        if fresh { LazyFinishMarker.remove(lazyRoot: root, volume: name) }
        if fresh, let top = manifest.entries.first(where: { $0.path.isEmpty }) {
            try FileRestorer.applyMetadata(top, at: ByteString(upper))
        }
        let (mount, base, adopted) = try mountBackup(name: name, manifest: manifest, repository: repository,
                                                     options: mountOptions, adopting: !fresh)
        let merged = base + "/merged"
        var kept = false
        do {
            // An adopted backup mount still has its overlay (containers use it): it stays as it is.
            if !(adopted && MountInfo.isMountPoint(merged)) {
                for directory in [merged, work] { try Filesystem.makeDirectory(directory, mode: 0o700) }
                try await Overlay.mount(lower: mount.mountpoint, upper: upper, work: work, at: merged)
            }
            kept = adopted || handoff?.hold(mount.mountpoint, device: mount.device, mount: mount.kernelMount) == true
        } catch {
            handoff?.drop(mount.mountpoint)
            try? mount.unmount()
            throw ConvoyError.wrap(error, context: "cannot build the overlay of lazy volume \(name)",
                                   as: .driverFailure)
        }
        let layout = Layout.overlay(merged: merged, upper: upper, work: work, copyTo: apart ? directory : nil)
        active[name] = Attached(mount: mount, layout: layout, manifest: manifest,
                                progress: HydrationProgress(manifest: manifest), url: url, kept: kept)
    }

    /// Where a lazy file volume's layers are: its directory; the overlay's upper layer, which is that directory,
    /// or `<root>/lazy/<name>/upper` where overlayfs cannot write into it (gluster's FUSE client: the volume's
    /// writes land there until its tree is complete, and are copied into the directory at the end); the
    /// overlay's work directory, beside the upper layer (same filesystem).
    func overlayPaths(name: String, volume: DriverVolume, driver: any VolumeDriver) throws(ConvoyError)
        -> (directory: String, upper: String, work: String, apart: Bool) {
        let directory = try driver.directory(of: volume, refusal: "driver \(driver.name) cannot restore a file backup")
        let apart = (driver as? any DirectoryBackedDriver)?.holdsOverlayUpperLayer == false
        let upper = apart ? try PathGuard.child(of: root, named: name) + "/upper" : directory
        let upperParent = String(upper[..<(upper.lastIndex(of: "/") ?? upper.endIndex)])
        let work = try PathGuard.child(of: upperParent + "/.convoy-work", named: name)
        return (directory, upper, work, apart)
    }

    /// Drops the overlay and the backup's mount and makes the directory plain; nil (and nothing changed) when
    /// the overlay is still busy, or when making it plain failed (then it is tried again: `LazyLifecycle`).
    /// The finish is recorded on disk before the overlay goes (`LazyFinishMarker`), so a crash part way is
    /// resumed at start instead of mounting the overlay again over a half-cleaned layer (deleted files would
    /// come back).
    func finishOverlay(_ record: VolumeRecord, _ attached: Attached) async -> [String: String]? {
        let name = record.name
        guard case .overlay(let merged, let upper, let work, let copyTo) = attached.layout else { return nil }
        if !attached.lifecycle.isFinishing {
            do throws(ConvoyError) {
                try LazyFinishMarker.write(lazyRoot: root, volume: name)
            } catch {
                logger.error("cannot finish lazy volume \(name): \(error.message)")
                return nil
            }
            // The kernel takes seconds to unmount a tree of a million cached files: off the actor, which every
            // other volume's Get and Mount pass through (the volume's own calls wait on its lock meanwhile).
            let code = (try? await BlockingIOPool.shared.run { Overlay.unmount(merged, detach: false) }) ?? EIO
            guard code == 0 || code == EINVAL else {
                LazyFinishMarker.remove(lazyRoot: root, volume: name)
                let reason = String(cString: strerror(code))
                let message = "lazy volume \(name) is hydrated but its overlay is busy (\(reason)); "
                    + "finishing at its next unmount"
                logger.warning("\(message)")
                return nil
            }
            active[name]?.lifecycle.finishing()
            let lower = attached.mount
            handoff?.drop(lower.mountpoint)
            try? await BlockingIOPool.shared.run { () throws(ConvoyError) in try lower.unmount() }
        }
        do throws(ConvoyError) {
            let done = try await Self.makePlain(upper: upper, work: work, copyTo: copyTo, manifest: attached.manifest)
            logger.info("lazy volume \(name) is now a plain directory", metadata: [
                "whiteouts": "\(done.whiteouts)", "overlayAttributes": "\(done.attributes)",
                "hardLinks": "\(done.relinked)"])
        } catch {
            active[name]?.lifecycle.finishing(failure: error.message)
            let message = "cannot finish lazy volume \(name) (tried again at its next unmount or start): "
                + error.message
            logger.error("\(message)")
            return nil
        }
        return record.driverInfo
    }

    /// Makes a volume's directory plain once its overlay is gone: overlayfs's traces removed, hard links made
    /// again, the upper layer copied in when it was kept apart, the work directory removed. Every step can run
    /// again after a crash part way: a kept-apart layer is renamed aside only once it is wholly copied, so a
    /// layer still in its place is copied again (`copyTree` replaces what a first attempt copied).
    static func makePlain(upper: String, work: String, copyTo: String?,
                          manifest: Manifest?) async throws(ConvoyError) -> (whiteouts: Int, attributes: Int,
                                                                             relinked: Int) {
        let copied = upper + ".copied"
        var done = (whiteouts: 0, attributes: 0, relinked: 0)
        var info = stat()
        if copyTo == nil || lstat(upper, &info) == 0 {
            // Walks of the whole tree: on the blocking pool, never on one of the few cooperative threads that
            // every other volume's requests need.
            done = try await BlockingIOPool.shared.run { () throws(ConvoyError) in
                let cleaned = try Overlay.cleanUpper(upper)
                Failpoint.reach("lazy-finish-cleaned")
                return (cleaned.whiteouts, cleaned.attributes, manifest.map { relinkHardLinks($0, in: upper) } ?? 0)
            }
            if let copyTo {
                try await copyTree(upper, into: copyTo)
                Failpoint.reach("lazy-finish-copied")
                try? Filesystem.removeTree(copied)
                guard rename(upper, copied) == 0 else {
                    throw PosixFile.failure("set aside the copied upper layer", upper)
                }
            }
        }
        if copyTo != nil { try? Filesystem.removeTree(copied) }
        try? Filesystem.removeTree(work)
        return done
    }

    /// Whether the volume's finish was begun (and not committed) before the daemon stopped.
    nonisolated func finishWasInterrupted(_ name: String) -> Bool {
        LazyFinishMarker.exists(lazyRoot: root, volume: name)
    }

    /// At start, for a volume whose finish was interrupted: what the crash left mounted goes, the directory is
    /// made plain (again), and the volume's new driver info is returned for its record; nil when it failed
    /// (logged; tried again at the next start). `manifest` nil (its store unreachable): hard links stay apart.
    func resumeFinish(_ record: VolumeRecord, driver: any VolumeDriver, manifest: Manifest?) async
        -> [String: String]? {
        let name = record.name
        do throws(ConvoyError) {
            let base = try PathGuard.child(of: root, named: name)
            if MountInfo.isMountPoint(base + "/merged") { Overlay.unmount(base + "/merged", detach: true) }
            if MountInfo.isMountPoint(base + "/backup") { BackupMount.detach(base + "/backup") }
            let (directory, upper, work, apart) = try overlayPaths(name: name, volume: record.driverVolume,
                                                                   driver: driver)
            _ = try await Self.makePlain(upper: upper, work: work, copyTo: apart ? directory : nil,
                                         manifest: manifest)
        } catch {
            let message = "cannot complete the interrupted finish of lazy volume \(name) (tried again at the "
                + "next start): \(error.message)"
            logger.error("\(message)")
            return nil
        }
        var info = record.driverInfo
        info[Self.backupKey] = nil
        return info
    }

    /// Once a finished volume's record says it is plain: its lazy directory (the finish record with it) goes.
    func forgetFinished(_ name: String) {
        if let attached = active[name], !attached.lifecycle.isFinished { return }
        active[name] = nil
        guard let base = try? PathGuard.child(of: root, named: name),
              !MountInfo.isMountPoint(base + "/merged"), !MountInfo.isMountPoint(base + "/backup") else { return }
        try? Filesystem.removeTree(base)
    }

    /// overlayfs (without `index`) copies each name of a hard link up as its own file; links whose files are
    /// still as in the backup become links again. The tree is the container's: every name is reached from a
    /// directory descriptor, never through a symlink.
    static func relinkHardLinks(_ manifest: Manifest, in upper: String) -> Int {
        guard let root = try? DirectoryDescriptor.open(upper) else { return 0 }
        var byPath: [ByteString: Entry] = [:]
        for entry in manifest.entries where entry.type == .file { byPath[entry.path] = entry }
        var relinked = 0
        for entry in manifest.entries where entry.type == .hardlink {
            guard let targetPath = entry.target, let original = byPath[targetPath],
                  let (directory, name) = try? root.parent(of: entry.path),
                  let (targetDirectory, targetName) = try? root.parent(of: targetPath),
                  let a = directory.status(of: name), let b = targetDirectory.status(of: targetName),
                  a.st_mode & S_IFMT == S_IFREG, b.st_mode & S_IFMT == S_IFREG, a.st_ino != b.st_ino,
                  unchanged(a, original), unchanged(b, original), let before = try? directory.status()
            else { continue }
            // Relinking changes the directory's times; it keeps the ones it had (the backup's, or the user's).
            let temporary = name + ".convoy-relink"
            let linked = targetName.withCString { from in
                temporary.withCString { linkat(targetDirectory.fd, from, directory.fd, $0, 0) }
            }
            guard linked == 0 else { continue }
            if temporary.withCString({ from in name.withCString { renameat(directory.fd, from, directory.fd, $0) } })
                == 0 {
                relinked += 1
            } else {
                temporary.withCString { _ = unlinkat(directory.fd, $0, 0) }
            }
            var times = [before.st_atim, before.st_mtim]
            futimens(directory.fd, &times)
        }
        return relinked
    }

    private static func unchanged(_ info: stat, _ entry: Entry) -> Bool {
        UInt64(info.st_size) == entry.size && Int64(info.st_mtim.tv_sec) == entry.mtimeSeconds
            && Int64(info.st_mtim.tv_nsec) == entry.mtimeNanoseconds
    }

    /// Replaces the content of `directory` with the tree at `source` (content, owners, modes, times, xattrs, hard
    /// links: `cp -a`). What a crashed earlier attempt copied is removed first, so a repeat leaves exactly `source`.
    static func copyTree(_ source: String, into directory: String) async throws(ConvoyError) {
        for entry in PosixFile.entries(in: directory) ?? [] {
            try Filesystem.removeTree(directory + "/" + entry.name)
        }
        _ = try await ExternalCommand.run("/bin/cp", ["-a", "-T", source, directory],
                                          timeout: .seconds(24 * 3600))
    }
}
