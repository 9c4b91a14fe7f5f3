import ArgumentParser
import Plugin

/// `convoy fuse-keeper`: started by the daemon, never by hand (hidden from help). See `FuseKeeper`.
struct FuseKeeperCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuse-keeper", abstract: "Hold lazy volumes' FUSE connections across daemon restarts.",
        shouldDisplay: false)

    @Option(help: "The keeper's socket.")
    var socket: String

    @Option(help: "Seconds without a daemon after which the held connections are closed.")
    var orphanTimeout: Double

    func run() throws {
        let status = FuseKeeper.run(socket: socket, orphanTimeout: orphanTimeout)
        if status != 0 { throw ExitCode(status) }
    }
}
