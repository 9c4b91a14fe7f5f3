import ConvoyCore

/// A backup policy given with a Create (Docker's `-o backup-every=1d -o backup-dest=URL -o backup-keep-daily=7`):
/// taken out of the create options before they reach the driver, and set once the volume exists.
enum PolicyOptions {
    static let keys: Set<String> = ["backup-every", "backup-dest", "backup-at", "backup-keep-last",
                                    "backup-keep-hourly", "backup-keep-daily", "backup-keep-weekly",
                                    "backup-keep-monthly", "backup-keep-yearly", "backup-keep-within",
                                    "backup-verify-every", "backup-verify-subset"]

    /// Removes the policy's options from `options` and returns the policy they make for `volume`; nil when they
    /// hold none. Partial policies are refused: a schedule needs both `backup-every` and `backup-dest`.
    static func take(from options: inout [String: String],
                     volume: String) throws(ConvoyError) -> ClientAPI.BackupPolicy? {
        var given: [String: String] = [:]
        for key in keys { given[key] = options.removeValue(forKey: key) }
        guard !given.isEmpty else { return nil }
        guard let every = given["backup-every"], let destination = given["backup-dest"] else {
            throw .invalid("a backup policy needs both backup-every (such as 1d or 6h) and backup-dest (a backup "
                + "store URL); given: \(given.keys.sorted().joined(separator: ", "))")
        }
        let count = { (key: String) throws(ConvoyError) -> Int? in
            guard let text = given[key] else { return nil }
            guard let value = Int(text) else { throw .invalid("\(key): '\(text)' is not a count (or -1 for all)") }
            return value
        }
        let keep = RetentionPolicy(
            last: try count("backup-keep-last"), hourly: try count("backup-keep-hourly"),
            daily: try count("backup-keep-daily"), weekly: try count("backup-keep-weekly"),
            monthly: try count("backup-keep-monthly"), yearly: try count("backup-keep-yearly"),
            within: try given["backup-keep-within"].map { text throws(ConvoyError) in
                try DurationText.seconds(text, option: "backup-keep-within")
            })
        var policy = ClientAPI.BackupPolicy(volume: volume, destination: destination,
                                            everySeconds: try DurationText.seconds(every, option: "backup-every"),
                                            at: given["backup-at"], keep: keep)
        policy.verifyEverySeconds = try given["backup-verify-every"].map { text throws(ConvoyError) in
            try DurationText.seconds(text, option: "backup-verify-every")
        }
        policy.verifySubset = given["backup-verify-subset"]
        return policy
    }
}
