import Backupstore
import ConvoyCore

/// The create options of a replicated volume (issue 19): `replica=URL`, a backup destination the owning host
/// backs the volume up to every `replicainterval` (default 60s), and `takeover=force`, which takes the volume
/// over from a host whose lease is still live (the split-brain risk: both hosts may write). Kept with the volume's
/// options, so a restart replicates on.
struct ReplicaOptions: Equatable, Sendable {
    static let keys: Set<String> = ["replica", "replicainterval", "takeover"]
    /// Local drivers whose volumes a backup and a lazy restore can carry to another host.
    static let drivers: Set<String> = ["vfs", "devicemapper"]
    static let defaultInterval: Duration = .seconds(60)

    var destination: String
    var interval: Duration
    var forceTakeover: Bool

    /// The volume's replica options; nil when it has none.
    static func parse(_ options: [String: String], driver: String) throws(ConvoyError) -> ReplicaOptions? {
        guard let destination = options["replica"] else {
            if let key = options.keys.first(where: { keys.contains($0) }) {
                throw .invalid("option \(key) needs replica=URL (the backup destination the volume is replicated to)")
            }
            return nil
        }
        guard drivers.contains(driver) else {
            throw .invalid("option replica: driver \(driver) does not replicate volumes (vfs and devicemapper do)")
        }
        do {
            _ = try StoreLocation.parse(destination)
        } catch {
            throw .invalid("option replica: \(error.message)")
        }
        let interval = try options["replicainterval"].map { text throws(ConvoyError) in try duration(text) }
            ?? defaultInterval
        switch options["takeover"] {
        case nil: return ReplicaOptions(destination: destination, interval: interval, forceTakeover: false)
        case "force": return ReplicaOptions(destination: destination, interval: interval, forceTakeover: true)
        case let other?: throw .invalid("option takeover: '\(other)' is not 'force'")
        }
    }

    /// `90`, `90s`, `2m` or `1h`: at least one second, at most a day.
    static func duration(_ text: String) throws(ConvoyError) -> Duration {
        let units: [(suffix: String, seconds: Int)] = [("h", 3600), ("m", 60), ("s", 1), ("", 1)]
        for unit in units where text.hasSuffix(unit.suffix) {
            guard let count = Int(text.dropLast(unit.suffix.count)), count > 0,
                  count <= 86_400 / unit.seconds else { break }
            return .seconds(count * unit.seconds)
        }
        throw .invalid("option replicainterval: '\(text)' is not a duration from 1s to 24h (e.g. 60s, 5m, 1h)")
    }

    /// How long a lease lasts without renewal: three intervals, so one slow or failed replica does not hand the
    /// volume to another host.
    var leaseSeconds: Double { Double(interval.components.seconds) * 3 }
}
