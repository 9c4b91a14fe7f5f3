import ConvoyCore
import Foundation
import Plugin

/// `convoy daemon`'s settings: a flag given on the command line, else the configuration file's value, else the
/// default. Lists given as flags replace the file's; a boolean flag can only turn its setting on.
struct DaemonSettings {
    let command: DaemonCommand
    let file: DaemonConfigFile

    func string(_ key: String, _ flag: String?) -> String? { flag ?? file.strings[key] }
    func number(_ key: String, _ flag: Double?) -> Double? { flag ?? file.numbers[key] }
    func flag(_ key: String, _ flag: Bool) -> Bool { flag || file.flags[key] == true }
    func list(_ key: String, _ flag: [String]) -> [String] {
        DaemonConfiguration.list(flag.isEmpty ? file.lists[key] ?? [] : flag)
    }
    /// A list whose values may hold commas (paths, URLs): not split.
    func values(_ key: String, _ flag: [String]) -> [String] { flag.isEmpty ? file.lists[key] ?? [] : flag }
    /// KEY=VALUE pairs: the flags' when any, else the file's object.
    func pairs(_ key: String, _ flag: [String]) -> [String] {
        flag.isEmpty ? (file.maps[key] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } : flag
    }

    func configuration() throws(ConvoyError) -> DaemonConfiguration {
        let command = self.command
        let names = list("drivers", command.drivers)
        var configuration = DaemonConfiguration(
            root: string("root", command.root) ?? ClientAPI.defaultRoot,
            socket: string("socket", command.socket) ?? ClientAPI.defaultSocket,
            pluginSocket: string("plugin-socket", command.pluginSocket) ?? ClientAPI.defaultPluginSocket,
            drivers: names.isEmpty ? nil : names,
            driverOptions: try DaemonConfiguration.parseDriverOptions(pairs("driver-opts", command.driverOptions)),
            ignoreDockerDelete: flag("ignore-docker-delete", command.ignoreDockerDelete),
            s3Endpoint: string("s3-endpoint", command.s3Endpoint))
        configuration.fuseCacheBytes = try ByteSize.parse(string("fuse-cache-size", command.fuseCacheSize) ?? "64M",
                                                          option: "--fuse-cache-size")
        configuration.fuseDiskCache = flag("fuse-disk-cache", command.fuseDiskCache)
        let readAhead = number("fuse-read-ahead", command.fuseReadAhead.map(Double.init))
            ?? Double(DaemonConfiguration.defaultReadAhead)
        guard (0...64).contains(readAhead), readAhead.rounded() == readAhead else {
            throw ConvoyError.invalid("--fuse-read-ahead: \(readAhead) is not a whole number from 0 to 64 blocks")
        }
        configuration.fuseReadAheadBlocks = Int(readAhead)
        let pause = number("hydration-pause", command.hydrationPause) ?? 0
        guard pause >= 0, pause <= 3600 else {
            throw ConvoyError.invalid("--hydration-pause: \(pause) is not between 0 and 3600 seconds")
        }
        configuration.hydrationPause = .milliseconds(Int(pause * 1000))
        configuration.socketGroup = string("socket-group", command.socketGroup)
        configuration.backupDestinations = list("backup-destinations", command.backupDestinations)
        configuration.allowAnyBackupDestination = flag("allow-any-backup-destination",
                                                       command.allowAnyBackupDestination)
        configuration.storePasswordFiles = try StoreKeyring.parse(pairs("store-password-file",
                                                                        command.storePasswordFile))
        configuration.appendOnlyDestinations = try StoreFactory.canonicalURLs(values("append-only", command.appendOnly))
        let browseRoots = values("browse-root", command.browseRoot)
        configuration.browseRoots = browseRoots.isEmpty ? nil : browseRoots
        configuration.allowAnyBrowseTarget = flag("allow-any-browse-target", command.allowAnyBrowseTarget)
        configuration.hostID = string("host-id", command.hostID)
        let leaseTTL = number("host-lease-ttl", command.hostLeaseTTL) ?? 30
        guard leaseTTL >= 3, leaseTTL <= 3600 else {
            throw ConvoyError.invalid("--host-lease-ttl: \(leaseTTL) is not between 3 and 3600 seconds")
        }
        configuration.hostLeaseSeconds = leaseTTL
        configuration.csiSocket = string("csi-socket", command.csiSocket)
        configuration.csiSnapshotDestination = string("csi-snapshot-dest", command.csiSnapshotDest)
        configuration.csiExpandOnNode = flag("csi-expand-on-node", command.csiExpandOnNode)
        let handoff = number("fuse-handoff-timeout", command.fuseHandoffTimeout)
            ?? DaemonConfiguration.defaultHandoffSeconds
        guard handoff >= 0, handoff <= 86_400 else {
            throw ConvoyError.invalid("--fuse-handoff-timeout: \(handoff) is not between 0 and 86400 seconds")
        }
        configuration.fuseHandoffSeconds = handoff
        let s3Concurrency = number("s3-concurrency", command.s3Concurrency.map(Double.init))
            ?? Double(DaemonConfiguration.defaultS3Concurrency)
        guard let concurrency = Int(exactly: s3Concurrency), (1...256).contains(concurrency) else {
            throw ConvoyError.invalid("--s3-concurrency: \(String(format: "%g", s3Concurrency)) is not a whole "
                + "number from 1 to 256")
        }
        configuration.s3Concurrency = concurrency
        configuration.metricsPerVolume = flag("metrics-per-volume", command.metricsPerVolume)
        configuration.metricsAddress = try string("metrics-address", command.metricsAddress).map {
            address throws(ConvoyError) in try MetricsAddress.parse(address)
        }
        return configuration
    }
}
