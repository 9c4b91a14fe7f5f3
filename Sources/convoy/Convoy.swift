import ArgumentParser
import ConvoyCore

@main
struct Convoy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convoy",
        abstract: "A storage daemon for containers, and its client.",
        discussion: "Run `convoy daemon` as root; Docker finds it at \(ClientAPI.defaultPluginSocket).",
        version: ConvoyVersion.current,
        subcommands: [
            DaemonCommand.self, CreateCommand.self, DeleteCommand.self, MountCommand.self, UmountCommand.self,
            ListCommand.self, InspectCommand.self, InfoCommand.self, SnapshotCommand.self, BackupCommand.self,
            JobCommand.self, HydrateCommand.self, FuseKeeperCommand.self,
        ])

    /// ArgumentParser's entry point, on the arguments with a leading socket option moved behind the command
    /// (`GlobalSocketOption`).
    static func main() async {
        await main(GlobalSocketOption.movedAfterCommand(Array(CommandLine.arguments.dropFirst())))
    }
}

/// Options every client command takes.
struct ClientOptions: ParsableArguments {
    @Option(name: [.long, .customShort("s")],
            help: "The daemon's client socket (also accepted before the command, as Convoy took it).")
    var socket: String = ClientAPI.defaultSocket

    @Option(name: .long, help: "Output format: json (as Convoy printed it) or table.")
    var format: OutputFormat = .json
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case json
    case table
}
