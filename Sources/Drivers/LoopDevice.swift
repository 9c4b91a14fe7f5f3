import ConvoyCore

/// Loop devices over files (a backup's image served by BackupFS), read-only.
public enum LoopDevice {
    static let timeout = Duration.seconds(30)

    /// Attaches `file` read-only to a free loop device and returns the device's path.
    public static func attachReadOnly(_ file: String) async throws(ConvoyError) -> String {
        let device = try await ExternalCommand.run("/sbin/losetup", ["-r", "-f", "--show", file], timeout: timeout)
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard device.hasPrefix("/dev/loop") else {
            throw ConvoyError(.driverFailure, "losetup attached \(file) but named no loop device ('\(device)')")
        }
        return device
    }

    public static func detach(_ device: String) async throws(ConvoyError) {
        _ = try await ExternalCommand.run("/sbin/losetup", ["-d", device], timeout: timeout)
    }
}
