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
        let directory = try driver.directory(of: volume, refusal: "driver \(driver.name) cannot restore a file backup")
        // overlayfs cannot write into some filesystems (gluster's FUSE client): the volume's writes then land in
        // `<root>/lazy/<name>/upper` until its tree is complete, and are copied into its directory at the end.
        let apart = (driver as? any DirectoryBackedDriver)?.holdsOverlayUpperLayer == false
        let upper = apart ? try PathGuard.child(of: root, named: name) + "/upper" : directory
        if apart { try Filesystem.makeDirectory(upper, mode: 0o755) }
        let upperParent = String(upper[..<(upper.lastIndex(of: "/") ?? upper.endIndex)])
        let work = try PathGuard.child(of: upperParent + "/.convoy-work", named: name)
        if fresh, let top = manifest.entries.first(where: { $0.path.isEmpty }) {
            try FileRestorer.applyMetadata(top, at: upper)
        }
        let (mount, base) = try mountBackup(name: name, manifest: manifest, repository: repository,
                                            options: mountOptions)
        let merged = base + "/merged"
        do {
            for directory in [merged, work] { try Filesystem.makeDirectory(directory, mode: 0o700) }
            try await Overlay.mount(lower: mount.mountpoint, upper: upper, work: work, at: merged)
        } catch {
            try? mount.unmount()
            throw ConvoyError.wrap(error, context: "cannot build the overlay of lazy volume \(name)",
                                   as: .driverFailure)
        }
        let layout = Layout.overlay(merged: merged, upper: upper, work: work, copyTo: apart ? directory : nil)
        active[name] = Attached(mount: mount, layout: layout, manifest: manifest,
                                progress: HydrationProgress(manifest: manifest), url: url)
    }

    /// Drops the overlay and the backup's mount and cleans the directory; nil (and nothing changed) when the
    /// overlay is still busy.
    func finishOverlay(_ record: VolumeRecord, _ attached: Attached) async -> [String: String]? {
        let name = record.name
        guard case .overlay(let merged, let upper, let work, let copyTo) = attached.layout else { return nil }
        let code = Overlay.unmount(merged, detach: false)
        guard code == 0 || code == EINVAL else {
            let reason = String(cString: strerror(code))
            let message = "lazy volume \(name) is hydrated but its overlay is busy (\(reason)); "
                + "finishing at its next unmount"
            logger.warning("\(message)")
            return nil
        }
        do {
            try attached.mount.unmount()
            let cleaned = try Overlay.cleanUpper(upper)
            let relinked = Self.relinkHardLinks(attached.manifest, in: upper)
            if let copyTo { try await Self.copyTree(upper, into: copyTo) }
            try? Filesystem.removeTree(work)
            try? Filesystem.removeTree(try PathGuard.child(of: root, named: name))
            logger.info("lazy volume \(name) is now a plain directory", metadata: [
                "whiteouts": "\(cleaned.whiteouts)", "overlayAttributes": "\(cleaned.attributes)",
                "hardLinks": "\(relinked)"])
        } catch {
            logger.error("cannot finish lazy volume \(name): \(error.message)")
            return nil
        }
        return record.driverInfo
    }

    /// overlayfs (without `index`) copies each name of a hard link up as its own file; links whose files are
    /// still as in the backup become links again. The tree is the container's: every name is reached from a
    /// directory descriptor, never through a symlink.
    static func relinkHardLinks(_ manifest: Manifest, in upper: String) -> Int {
        guard let root = try? DirectoryDescriptor.open(upper) else { return 0 }
        var byPath: [String: Entry] = [:]
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
            guard linkat(targetDirectory.fd, targetName, directory.fd, temporary, 0) == 0 else { continue }
            if renameat(directory.fd, temporary, directory.fd, name) == 0 {
                relinked += 1
            } else {
                unlinkat(directory.fd, temporary, 0)
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
