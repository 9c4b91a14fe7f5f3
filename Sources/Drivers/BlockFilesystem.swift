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

    public static func mount(_ device: String, filesystem: String, at path: String) async throws(ConvoyError) {
        try Filesystem.makeDirectory(path, mode: 0o755)
        _ = try await ExternalCommand.run("/bin/mount", ["-t", filesystem, device, path], timeout: timeout)
    }

    /// Unmounts when mounted; a path that is not a mount point is left alone.
    public static func unmount(_ path: String) async throws(ConvoyError) {
        guard MountInfo.isMountPoint(path) else { return }
        _ = try await ExternalCommand.run("/bin/umount", [path], timeout: timeout)
    }
}
