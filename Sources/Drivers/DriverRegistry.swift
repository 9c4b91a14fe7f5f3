import ConvoyCore
import Logging

/// Builds the drivers the daemon was asked for, validating their `--driver-opts` (Convoy's driver registry).
/// Option keys are `<driver>.<option>`; every key must belong to an enabled driver and be one it knows.
public enum DriverRegistry {
    /// Constructs one driver (the `make` of an `available` entry).
    typealias MakeDriver = @Sendable (DriverContext) throws(ConvoyError) -> any VolumeDriver

    /// Drivers this build can construct, with the prefix of their option keys (Convoy's: `dm.` for devicemapper)
    /// and the keys each accepts.
    static let available: [String: (prefix: String, optionKeys: Set<String>, make: MakeDriver)] = [
        VFSDriver.driverName: ("vfs", VFSDriver.optionKeys, { context throws(ConvoyError) in
            try VFSDriver(context: context)
        }),
        DevicemapperDriver.driverName: ("dm", DevicemapperDriver.optionKeys, { context throws(ConvoyError) in
            try DevicemapperDriver(context: context)
        }),
        GlusterfsDriver.driverName: ("glusterfs", GlusterfsDriver.optionKeys, { context throws(ConvoyError) in
            try GlusterfsDriver(context: context)
        }),
        EBSDriver.driverName: ("ebs", EBSDriver.optionKeys, { context throws(ConvoyError) in
            try EBSDriver(context: context)
        }),
    ]

    public static var availableNames: [String] { available.keys.sorted() }

    /// Schemes of the backups that a driver keeps in its own service, with that driver: a URL of one is the
    /// driver's to read, whether or not this daemon runs it.
    public static let nativeBackupSchemes: [String: String] = [EBSDriver.backupSchemeName: EBSDriver.driverName]

    /// The driver whose own service keeps the backup at `url` (`ebs://...`), nil for a backup store's URL.
    public static func nativeBackupDriverName(forURL url: String) -> String? {
        nativeBackupSchemes.first { url.hasPrefix($0.key + "://") }?.value
    }

    public static func makeDrivers(names: [String], root: String, options: [String: String], hostID: String = "",
                                   logger: Logger = Logger(label: "convoy"),
                                   leaseEvents: LeaseEvents? = nil) throws(ConvoyError) -> [any VolumeDriver] {
        guard !names.isEmpty else {
            throw .invalid("--drivers: name at least one driver "
                + "(available: \(availableNames.joined(separator: ", ")))")
        }
        var seen = Set<String>()
        for name in names {
            guard available[name] != nil else {
                throw .invalid("--drivers: unknown driver '\(name)'; "
                    + "available: \(availableNames.joined(separator: ", "))")
            }
            guard seen.insert(name).inserted else { throw .invalid("--drivers: driver '\(name)' is named twice") }
        }
        for key in options.keys.sorted() {
            guard let dot = key.firstIndex(of: "."), key[key.index(after: dot)...].isEmpty == false else {
                throw .invalid("--driver-opts: '\(key)' is not of the form <driver>.<option> "
                    + "(e.g. vfs.path=/srv/volumes)")
            }
            let prefix = String(key[..<dot])
            let driver = available.first { $0.value.prefix == prefix }?.key ?? prefix
            guard let entry = available[driver], seen.contains(driver) else {
                throw .invalid("--driver-opts: option '\(key)' is for driver '\(driver)', which is not enabled "
                    + "(--drivers \(names.joined(separator: ",")))")
            }
            guard entry.optionKeys.contains(key) else {
                throw .invalid("--driver-opts: unknown option '\(key)'; "
                    + "\(driver) accepts \(entry.optionKeys.sorted().joined(separator: ", "))")
            }
        }
        var drivers: [any VolumeDriver] = []
        for name in names {
            guard let entry = available[name] else { continue }
            let own = options.filter { $0.key.hasPrefix(entry.prefix + ".") }
            var context = DriverContext(root: root, options: own, hostID: hostID, logger: logger)
            context.leaseEvents = leaseEvents
            drivers.append(try entry.make(context))
        }
        return drivers
    }
}

/// What a driver is constructed from: the daemon's root, its own `<driver>.*` options, the host id (for a driver
/// that holds leases in storage other hosts reach) and the daemon's logger (for what it decides on its own).
/// A lease taken or renewed (`takeover`: taken from a host whose lease ran out), named by its kind ("ebs").
public typealias LeaseEvents = @Sendable (_ lease: String, _ takeover: Bool) -> Void

public struct DriverContext: Sendable {
    public var root: String
    public var options: [String: String]
    public var hostID: String
    public var logger: Logger
    /// Told of every lease a driver takes or renews in shared storage (the daemon's metrics); nil: no one.
    public var leaseEvents: LeaseEvents?

    public init(root: String, options: [String: String], hostID: String = "",
                logger: Logger = Logger(label: "convoy")) {
        self.root = root
        self.options = options
        self.hostID = hostID
        self.logger = logger
    }
}
