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

    @Option(help: "Drivers to enable (repeatable or comma-separated); the first is the default. Default: as saved by the last start, else vfs.")
    var drivers: [String] = []

    @Option(name: .customLong("driver-opts"), help: "Driver option KEY=VALUE, e.g. vfs.path=/srv/volumes (repeatable).")
    var driverOptions: [String] = []

    @Flag(help: "Keep a volume and its data when Docker removes it (Convoy's old behaviour).")
    var ignoreDockerDelete = false

    @Option(help: "Endpoint of an S3-compatible server for s3:// destinations (default: AWS_ENDPOINT_URL, else AWS).")
    var s3Endpoint: String?

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
        do {
            let names = drivers.flatMap { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
            let configuration = DaemonConfiguration(
                root: root, socket: socket, pluginSocket: pluginSocket, drivers: names.isEmpty ? nil : names,
                driverOptions: try DaemonConfiguration.parseDriverOptions(driverOptions),
                ignoreDockerDelete: ignoreDockerDelete, s3Endpoint: s3Endpoint)
            try await Daemon.run(configuration, logger: logger)
        } catch {
            Output.error(error.message)
            throw ExitCode.failure
        }
    }
}
