import BackupFS
import Backupstore
import CLinux
import ConvoyCore
import Drivers
import Foundation
import Logging

/// `convoy backup mount URL DIR`: backups mounted read-only for browsing. The daemon owns the mounts (the CLI
/// that asked may exit); they are listed in the state database so that after a crash the next start can detach
/// what the dead daemon left ("Transport endpoint is not connected"). A target must lie under a browse root
/// (`BrowseTargets`), and the backup's destination must be one this daemon may read (`BackupDestinations`).
public actor BackupBrowser {
    static let configKey = "backup-mounts"

    private let store: StateStore
    private let stores: StoreFactory
    /// Where block backups' images are served before their filesystem is mounted at the target.
    private let images: String
    private let logger: Logger
    private let options: BackupMountOptions
    /// Where backups may be mounted (`--browse-root`).
    private let targets: BrowseTargets
    private var mounts: [String: (mount: BackupMount, info: ClientAPI.BackupMountInfo)] = [:]

    public init(root: String, store: StateStore, stores: StoreFactory, logger: Logger, options: BackupMountOptions,
                targets: BrowseTargets) {
        self.images = root + "/browse"
        self.store = store
        self.stores = stores
        self.targets = targets
        self.logger = logger
        // Browsing reads files; nothing in a backup runs from its mount.
        var browsing = options
        browsing.allowsExecution = false
        self.options = browsing
    }

    public func mount(url: String, at requested: String) async throws(ConvoyError) -> ClientAPI.BackupMountInfo {
        let path = try Self.mountpoint(requested)
        try targets.check(path, requested: requested)
        guard mounts[path] == nil else {
            throw .conflict("\(path) already shows a backup; `convoy backup umount \(path)` first")
        }
        guard !MountInfo.isMountPoint(path) else {
            throw .conflict("something is mounted at \(path) already; choose an empty directory")
        }
        guard (PosixFile.entries(in: path) ?? []).isEmpty else {
            throw .invalid("\(path) is not empty; mount a backup on an empty directory")
        }
        let backup = try BackupURL.parse(url)
        let repository = try await stores.repository(backup.destination, for: .existingBackups)
        let manifest = try await repository.manifest(volume: backup.volume, backup: backup.backupID)
        let logger = self.logger
        let image = manifest.kind == .blocks ? images + "/" + ObjectName.generate(prefix: "image") : nil
        if let image { try Filesystem.makeDirectory(image, mode: 0o700) }
        let mount = try BackupMount.mount(manifest: manifest, repository: repository, at: image ?? path,
                                          options: options) { line in
            logger.error("backup mount \(path): \(line)")
        }
        var info = ClientAPI.BackupMountInfo(url: backup.url, path: path, mountedAt: Date().formatted(.iso8601),
                                             image: image)
        if let image {
            do {
                info.loopDevice = try await Self.mountImage(image + "/" + Manifest.imageName, at: path)
            } catch {
                try? mount.unmount()
                rmdir(image)
                throw error
            }
        }
        mounts[path] = (mount, info)
        persist()
        logger.info("mounted backup", metadata: ["url": "\(backup.url)", "path": "\(path)"])
        return info
    }

    public func unmount(_ requested: String) async throws(ConvoyError) {
        let path = try Self.mountpoint(requested)
        guard let entry = mounts[path] else {
            throw .notFound("no backup is mounted at \(path); `convoy backup mounts` lists them")
        }
        try await Self.unmountImage(entry.info, detach: false)
        try entry.mount.unmount()
        if let image = entry.info.image { rmdir(image) }
        mounts[path] = nil
        persist()
        logger.info("unmounted backup", metadata: ["path": "\(path)"])
        // The heap keeps what the mount's reads freed, for reuse; give it back (as the last job to end does).
        convoy_release_free_memory()
    }

    /// Options of the image's filesystem mount: read-only without replaying its journal (the image cannot be
    /// written), and nothing on it is a device, a setuid program or runs.
    static let imageMountOptions = "ro,norecovery,nosuid,nodev,noexec"

    /// A block backup: its image attached read-only to a loop device, whose filesystem is mounted as
    /// `imageMountOptions` say. Its type is checked first and named to mount: the kernel never probes a type on
    /// bytes the store supplies, and only the filesystems convoy makes (ext4, xfs) are mounted.
    static func mountImage(_ image: String, at path: String) async throws(ConvoyError) -> String {
        let loop = try await LoopDevice.attachReadOnly(image)
        do {
            let found = await BlockFilesystem.detect(on: loop)
            guard let type = found, BlockFilesystem.supported.contains(type) else {
                let holds = found.map { "a \($0) filesystem" } ?? "no filesystem blkid knows"
                let allowed = BlockFilesystem.supported.sorted().joined(separator: " and ")
                throw ConvoyError.invalid("the backup's image holds \(holds); only \(allowed) are mounted")
            }
            // xfs refuses a second mount of a UUID, and the image has its volume's, which may be mounted.
            let options = imageMountOptions + (type == "xfs" ? ",nouuid" : "")
            _ = try await ExternalCommand.run("/bin/mount", ["-t", type, "-o", options, loop, path],
                                              timeout: .seconds(60))
        } catch {
            try? await LoopDevice.detach(loop)
            throw ConvoyError.wrap(error, context: "the backup's image holds no filesystem that can be mounted",
                                   as: .driverFailure)
        }
        return loop
    }

    static func unmountImage(_ info: ClientAPI.BackupMountInfo, detach: Bool) async throws(ConvoyError) {
        guard let loop = info.loopDevice else { return }
        if MountInfo.isMountPoint(info.path) {
            _ = try await ExternalCommand.run("/bin/umount", detach ? ["-l", info.path] : [info.path],
                                              timeout: .seconds(60))
        }
        try? await LoopDevice.detach(loop)
    }

    public func list() -> [ClientAPI.BackupMountInfo] {
        mounts.values.map(\.info).sorted { $0.path < $1.path }
    }

    /// At start: what a previous daemon mounted is gone with its FUSE server; detach what is left.
    public func cleanUpAfterPreviousRun() async -> [String] {
        var repairs: [String] = []
        let recorded = (try? store.config(Self.configKey)).flatMap { text in
            try? JSONDecoder().decode([ClientAPI.BackupMountInfo].self, from: Data(text.utf8))
        } ?? []
        for info in recorded where MountInfo.isMountPoint(info.path) || info.image.map(MountInfo.isMountPoint) == true {
            try? await Self.unmountImage(info, detach: true)
            let served = info.image ?? info.path
            let dead = BackupMount.isDeadMount(served)
            BackupMount.detach(served)
            if let image = info.image { rmdir(image) }
            repairs.append("backup mount \(info.path) (\(info.url)) was left by the previous daemon"
                + "\(dead ? " and no longer answered" : ""); unmounted it (mount it again to browse)")
        }
        persist()
        return repairs
    }

    /// At stop.
    public func unmountAll() async {
        for (path, entry) in mounts {
            do throws(ConvoyError) {
                try await Self.unmountImage(entry.info, detach: true)
                try entry.mount.unmount()
                if let image = entry.info.image { rmdir(image) }
            } catch {
                logger.warning("cannot unmount backup at \(path): \(error.message)")
            }
        }
        mounts = [:]
        persist()
    }

    private func persist() {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = (try? encoder.encode(list())).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
        do { try store.setConfig(Self.configKey, text) } catch {
            logger.error("cannot record the backup mounts: \(error.message)")
        }
    }

    /// An absolute path to an existing directory, with symlinks resolved (so one directory has one name).
    static func mountpoint(_ path: String) throws(ConvoyError) -> String {
        guard path.hasPrefix("/") else { throw .invalid("the mount directory '\(path)' must be an absolute path") }
        guard let resolved = realpath(path, nil) else {
            throw .notFound("the mount directory \(path) does not exist; create an empty directory first")
        }
        defer { free(resolved) }
        let result = String(cString: resolved)
        guard Filesystem.isDirectory(result) else { throw .invalid("\(path) is not a directory") }
        return result
    }
}
