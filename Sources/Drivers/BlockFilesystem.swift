import ConvoyCore

/// Filesystems on block devices (devicemapper's thin devices, EBS volumes): made, detected, mounted, unmounted.
public enum BlockFilesystem {
    public static let supported: Set<String> = ["ext4", "xfs"]
    static let timeout = Duration.seconds(60)

    /// No discard pass: a new device has nothing to discard, and discarding a fresh EBS volume takes minutes.
    public static func make(_ filesystem: String, on device: String) async throws(ConvoyError) {
        let (tool, arguments) = filesystem == "xfs" ? ("/sbin/mkfs.xfs", ["-q", "-f", "-K", device])
                                                    : ("/sbin/mkfs.ext4", ["-q", "-F", "-E", "nodiscard", device])
        _ = try await ExternalCommand.run(tool, arguments, timeout: .seconds(300))
    }

    /// The filesystem type on the device, nil when blkid finds none (exit 2).
    public static func detect(on device: String) async -> String? {
        let output = try? await ExternalCommand.run("/sbin/blkid", ["-o", "value", "-s", "TYPE", device],
                                                    timeout: timeout)
        return output.map { $0.stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
            .flatMap { $0.isEmpty ? nil : $0 }
    }

    /// xfs gets `nouuid`: a volume restored from a snapshot carries its source's UUID, and xfs refuses a second
    /// mount of one UUID while the source is mounted.
    public static func mount(_ device: String, filesystem: String, at path: String) async throws(ConvoyError) {
        try Filesystem.makeDirectory(path, mode: 0o755)
        let options = filesystem == "xfs" ? ["-o", "nouuid"] : []
        _ = try await ExternalCommand.run("/bin/mount", ["-t", filesystem] + options + [device, path], timeout: timeout)
    }

    /// Unmounts when mounted; a path that is not a mount point is left alone.
    public static func unmount(_ path: String) async throws(ConvoyError) {
        guard MountInfo.isMountPoint(path) else { return }
        _ = try await ExternalCommand.run("/bin/umount", [path], timeout: timeout)
    }

    /// The size of a block device in bytes.
    public static func deviceBytes(_ device: String) async throws(ConvoyError) -> UInt64 {
        let text = try await ExternalCommand.run("/sbin/blockdev", ["--getsize64", device], timeout: timeout).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = UInt64(text) else {
            throw ConvoyError(.driverFailure, "blockdev --getsize64 \(device) answered '\(text)'")
        }
        return bytes
    }

    /// Grows the filesystem mounted at `path` to fill its device, online (resize2fs, xfs_growfs); a filesystem
    /// that already fills it is left as it is.
    public static func grow(mountedAt path: String) async throws(ConvoyError) {
        guard let mount = MountInfo.mount(at: path) else {
            throw ConvoyError(.conflict, "\(path) is not mounted: a filesystem is grown while it is mounted")
        }
        switch mount.type {
        case "ext4":
            _ = try await ExternalCommand.run("/sbin/resize2fs", [mount.source], timeout: .seconds(600))
        case "xfs":
            _ = try await ExternalCommand.run("/usr/sbin/xfs_growfs", [path], timeout: .seconds(600))
        default:
            throw ConvoyError(.driverFailure, "cannot grow a \(mount.type) filesystem (\(path))")
        }
    }
}
