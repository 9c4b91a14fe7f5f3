import ConvoyCore

/// Loop devices over files: a backup's image served by BackupFS (read-only), a thin pool's sparse files.
public enum LoopDevice {
    static let timeout = Duration.seconds(30)

    /// Attaches `file` read-only to a free loop device and returns the device's path.
    public static func attachReadOnly(_ file: String) async throws(ConvoyError) -> String {
        try await attach(file, readOnly: true)
    }

    /// Attaches `file` to a free loop device and returns the device's path.
    static func attach(_ file: String, readOnly: Bool) async throws(ConvoyError) -> String {
        let device = try await ExternalCommand.run("/sbin/losetup", (readOnly ? ["-r"] : []) + ["-f", "--show", file],
                                                   timeout: timeout)
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard device.hasPrefix("/dev/loop") else {
            throw ConvoyError(.driverFailure, "losetup attached \(file) but named no loop device ('\(device)')")
        }
        return device
    }

    public static func detach(_ device: String) async throws(ConvoyError) {
        _ = try await ExternalCommand.run("/sbin/losetup", ["-d", device], timeout: timeout)
    }

    /// The first loop device `file` is attached to, if any (`losetup -j`: "/dev/loop3: [2049]:12 (/path)").
    static func attached(to file: String) async throws(ConvoyError) -> String? {
        let lines = try await ExternalCommand.run("/sbin/losetup", ["-j", file], timeout: timeout).stdout
        guard let line = lines.split(separator: "\n").first, let colon = line.firstIndex(of: ":") else { return nil }
        return String(line[..<colon])
    }
}
