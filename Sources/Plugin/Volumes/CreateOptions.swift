import ConvoyCore

/// The options of a Create request (Docker's `Opts`, or the CLI's flags), validated against the daemon and the
/// chosen driver. Unknown keys are refused by name rather than ignored, so a typo never goes unnoticed.
struct CreateOptions: Equatable {
    static let daemonKeys: Set<String> = ["driver", "size"]
    /// Handled before a create reaches these options (restore); listed in messages as accepted.
    static let restoreKeys: Set<String> = ["backup", "lazy"]

    var driver: String
    var size: UInt64
    var driverOptions: [String: String]

    init(_ raw: [String: String], drivers: [String: any VolumeDriver], defaultDriver: String) throws(ConvoyError) {
        let driverName = raw["driver"] ?? defaultDriver
        guard let driver = drivers[driverName] else {
            throw .invalid("unknown driver '\(driverName)'; "
                + "this daemon runs: \(drivers.keys.sorted().joined(separator: ", "))")
        }
        self.driver = driverName
        if let text = raw["size"] {
            size = try ByteSize.parse(text, option: "size")
        } else {
            size = 0
        }
        // Replica options stay with the volume's options (a restart replicates on); the driver ignores them.
        _ = try ReplicaOptions.parse(raw, driver: driverName)
        var driverOptions: [String: String] = [:]
        for (key, value) in raw where !Self.daemonKeys.contains(key) {
            guard driver.volumeOptionKeys.contains(key) || ReplicaOptions.keys.contains(key) else {
                let accepted = Self.daemonKeys.union(Self.restoreKeys).union(ReplicaOptions.keys)
                    .union(driver.volumeOptionKeys).sorted().joined(separator: ", ")
                throw .invalid("unknown option '\(key)' for driver \(driverName); accepted options: \(accepted)")
            }
            driverOptions[key] = value
        }
        self.driverOptions = driverOptions
    }
}
