import ConvoyCore

/// The device-mapper and block tools the driver runs, each with a timeout and its stderr in the error.
enum DMSetup {
    static let timeout = Duration.seconds(60)

    static func run(_ tool: String, _ arguments: [String],
                    timeout: Duration = timeout) async throws(ConvoyError) -> String {
        try await ExternalCommand.run(tool, arguments, timeout: timeout).stdout
    }

    /// True when a device-mapper device of that name exists.
    static func exists(_ name: String) async -> Bool {
        (try? await run("/sbin/dmsetup", ["info", "-c", "--noheadings", "-o", "name", name]))?
            .trimmingCharacters(in: .whitespacesAndNewlines) == name
    }

    static func create(_ name: String, table: String) async throws(ConvoyError) {
        _ = try await run("/sbin/dmsetup", ["create", name, "--table", table])
    }

    static func remove(_ name: String) async throws(ConvoyError) {
        guard await exists(name) else { return }
        // A device just unmounted can be briefly held by udev's probes: retry a few times.
        _ = try await run("/sbin/dmsetup", ["remove", "--retry", name])
    }

    static func suspend(_ name: String) async throws(ConvoyError) {
        _ = try await run("/sbin/dmsetup", ["suspend", name])
    }
    static func resume(_ name: String) async throws(ConvoyError) {
        _ = try await run("/sbin/dmsetup", ["resume", name])
    }

    static func message(_ pool: String, _ text: String) async throws(ConvoyError) {
        _ = try await run("/sbin/dmsetup", ["message", "/dev/mapper/" + pool, "0", text])
    }

    /// Replaces a live device's table (the kernel suspends it around the swap, flushing what is in flight).
    static func replaceTable(_ name: String, table: String, readOnly: Bool = false) async throws(ConvoyError) {
        _ = try await run("/sbin/dmsetup", ["reload", name] + (readOnly ? ["--readonly"] : []) + ["--table", table])
        try await resume(name)
    }

    /// The device's live table, e.g. `0 131072 thin 253:0 7 253:5`.
    static func table(_ name: String) async throws(ConvoyError) -> String {
        try await run("/sbin/dmsetup", ["table", name]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The devices a device-mapper device sits on, as `/dev/<name>` paths.
    static func dependencies(_ name: String) async throws(ConvoyError) -> [String] {
        // " 1 dependencies\t: (loop3)"
        let text = try await run("/sbin/dmsetup", ["deps", "-o", "devname", name])
        return text.split(separator: "(").dropFirst().compactMap { part in
            part.split(separator: ")").first.map { "/dev/" + $0 }
        }
    }

    static func status(_ name: String) async throws(ConvoyError) -> String {
        try await run("/sbin/dmsetup", ["status", name])
    }

    /// Size of a block device in 512-byte sectors.
    static func sectors(_ device: String) async throws(ConvoyError) -> UInt64 {
        let text = try await run("/sbin/blockdev", ["--getsz", device]).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let value = UInt64(text) else {
            throw ConvoyError(.driverFailure, "blockdev --getsz \(device) answered '\(text)'")
        }
        return value
    }
}
