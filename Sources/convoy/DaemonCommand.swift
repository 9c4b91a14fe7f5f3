import ArgumentParser
import ConvoyCore
import Logging
import Foundation
import Plugin

struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon", abstract: "Run the daemon: Docker's volume plugin and the client API.")

    @Option(help: "Directory for the daemon's state and the drivers' default data.")
    var root: String = ClientAPI.defaultRoot

    @Option(help: "The client API socket.")
    var socket: String = ClientAPI.defaultSocket

    @Option(help: "The Docker plugin socket; its file name (without .sock) is the driver name Docker uses.")
    var pluginSocket: String = ClientAPI.defaultPluginSocket

    @Option(help: ArgumentHelp("Drivers to enable (repeatable or comma-separated); the first is the default. "
        + "Default: as saved by the last start, else vfs."))
    var drivers: [String] = []

    @Option(name: .customLong("driver-opts"), help: "Driver option KEY=VALUE, e.g. vfs.path=/srv/volumes (repeatable).")
    var driverOptions: [String] = []

    @Flag(help: "Keep a volume and its data when Docker removes it (Convoy's old behaviour).")
    var ignoreDockerDelete = false

    @Option(help: "Endpoint of an S3-compatible server for s3:// destinations (default: AWS_ENDPOINT_URL, else AWS).")
    var s3Endpoint: String?

    @Option(help: "Memory for decompressed blocks of each mounted backup, e.g. 256M.")
    var fuseCacheSize: String = "256M"

    @Option(help: "Blocks fetched ahead when a file of a mounted backup is read sequentially (0-64).")
    var fuseReadAhead: Int = DaemonConfiguration().fuseReadAheadBlocks

    @Flag(help: "Also keep blocks fetched by mounted backups on disk, under <root>/cache/blocks.")
    var fuseDiskCache = false

    @Option(help: "Seconds to wait before hydrating each file of a lazily restored volume (throttles hydration).")
    var hydrationPause: Double = 0

    @Option(help: "A group whose members may use the client socket (like dockerd's -G); default: root only.")
    var socketGroup: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            Output.error("--log-level: unknown level '\(logLevel)'")
            throw ExitCode.failure
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "convoy")
        do throws(ConvoyError) {
            let names = drivers.flatMap {
                $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            }
            var configuration = DaemonConfiguration(
                root: root, socket: socket, pluginSocket: pluginSocket, drivers: names.isEmpty ? nil : names,
                driverOptions: try DaemonConfiguration.parseDriverOptions(driverOptions),
                ignoreDockerDelete: ignoreDockerDelete, s3Endpoint: s3Endpoint)
            configuration.fuseCacheBytes = try ByteSize.parse(fuseCacheSize, option: "--fuse-cache-size")
            configuration.fuseDiskCache = fuseDiskCache
            guard (0...64).contains(fuseReadAhead) else {
                throw ConvoyError.invalid("--fuse-read-ahead: \(fuseReadAhead) is not between 0 and 64 blocks")
            }
            configuration.fuseReadAheadBlocks = fuseReadAhead
            guard hydrationPause >= 0, hydrationPause <= 3600 else {
                throw ConvoyError.invalid("--hydration-pause: \(hydrationPause) is not between 0 and 3600 seconds")
            }
            configuration.hydrationPause = .milliseconds(Int(hydrationPause * 1000))
            configuration.socketGroup = socketGroup
            try await Daemon.run(configuration, logger: logger)
        } catch {
            Output.error(error.message)
            throw ExitCode.failure
        }
    }
}
