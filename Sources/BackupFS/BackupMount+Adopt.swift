import Backupstore
import CFuse
import ConvoyCore
#if canImport(Glibc)
import Glibc
#endif

extension BackupMount {
    /// The mount table's entry for the mount at `path`, read without looking at `path` (see `adopt`).
    public static func mountTableEntry(at path: String) -> MountInfo.Mount? {
        MountInfo.mount(at: MountTable.canonicalParent(path))
    }

    /// Fails every request of the FUSE connection mounted at `path` and detaches it: for a mount an earlier
    /// daemon left that this one cannot serve (its held descriptor would keep readers waiting forever).
    public static func abandon(_ path: String) {
        if let mount = mountTableEntry(at: path), mount.type.hasPrefix("fuse") {
            _ = MountTable.abortConnection(MountTable.connection(of: mount))
        }
        detach(MountTable.canonicalParent(path))
    }

    /// Serves a mount an earlier daemon made, on a copy of its /dev/fuse descriptor (`device`, taken over: closed
    /// with the session): the same tree from the same manifest gives the same node ids, so what the kernel cached
    /// stays right, and requests that waited while no daemon ran are answered now. Requests the earlier daemon
    /// had read and never answered are sent again by the kernel (FUSE_NOTIFY_RESEND, Linux 6.9); a kernel without
    /// it is an error here (those requests would wait forever), and the caller mounts afresh instead.
    ///
    /// `mountpoint` is not looked at (a stat there would wait on this very connection): its kernel mount is read
    /// from the mount table.
    public static func adopt(manifest: Manifest, repository: BackupRepository, at mountpoint: String, device: Int32,
                             options: BackupMountOptions = .init(),
                             log: @escaping @Sendable (String) -> Void) throws(ConvoyError) -> BackupMount {
        let canonicalPath = MountTable.canonicalParent(mountpoint)
        let filesystem: BackupFilesystem
        do throws(ConvoyError) {
            filesystem = try BackupFilesystem(manifest: manifest, repository: repository, options: options, log: log)
        } catch {
            close(device)
            throw error
        }
        guard let session = newSession(filesystem, options: mountOptions(options)) else {
            close(device)
            throw ConvoyError(.internalFailure, "libfuse refused the options of the mount of \(filesystem.label)")
        }
        // libfuse takes "/dev/fd/N" as a device opened and mounted by someone else.
        guard fuse_session_mount(session, "/dev/fd/\(device)") == 0 else {
            fuse_session_destroy(session)
            close(device)
            throw ConvoyError(.driverFailure, "libfuse would not serve the descriptor of \(filesystem.label)")
        }
        let resent = convoy_fuse_notify_resend(device)
        guard resent == 0 else {
            fuse_session_destroy(session)  // closes `device`
            throw ConvoyError(.unavailable, "this kernel cannot resend the FUSE requests an earlier daemon left "
                + "unanswered (FUSE_NOTIFY_RESEND needs Linux 6.9): \(String(cString: strerror(-resent)))")
        }
        convoy_fuse_adopt_init(session, FuseOperations.maxRead)
        return BackupMount(mountpoint: mountpoint, filesystem: filesystem, canonicalPath: canonicalPath,
                           kernelMount: MountInfo.mount(at: canonicalPath),
                           served: serve(session, filesystem, at: mountpoint), device: device)
    }
}
