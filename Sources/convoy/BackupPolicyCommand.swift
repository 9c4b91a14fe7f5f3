import ArgumentParser
import ConvoyClient
import ConvoyCore

extension BackupCommand {
    /// `convoy backup policy`: scheduled backups of a volume, with retention.
    struct Policy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Back a volume up on a schedule and forget old backups by retention rules.",
            subcommands: [Set.self, List.self, Inspect.self, Delete.self])

        struct Set: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Set (or replace) a volume's backup policy.",
                discussion: """
                    The daemon snapshots the volume every --every (on --at, HH:MM UTC, and every interval after \
                    it; else from when the policy is set), backs the snapshot up to --dest, then forgets that \
                    volume's backups there that the --keep rules do not keep (as `convoy backup forget` does) and \
                    frees their blocks. After downtime it runs once, not once per missed slot; a failed run is \
                    tried again after 5 minutes. The newest scheduled snapshot stays as the base of the next \
                    incremental backup. With --verify-every the run then checks the destination as `backup verify \
                    --all` does (reading --verify-subset of the blocks) when that long has passed since the last \
                    check; problems fail the run. Docker users give the same as options: -o backup-every=1d \
                    -o backup-dest=URL -o backup-keep-daily=7 ...
                    """)
            @OptionGroup var client: ClientOptions
            @Argument(help: "The volume.") var volume: String
            @Option(help: "The destination: vfs:///path, s3://bucket@region/path or ebs://.") var dest: String
            @Option(help: "How often: 1d, 6h, 30m... (at least 1m).") var every: String
            @Option(help: "The time of day (HH:MM, UTC) the runs fall on.") var at: String?
            @OptionGroup var retention: RetentionOptions
            @Option(help: "Check the destination after a run once this long has passed since the last check (7d).")
            var verifyEvery: String?
            @Option(help: "The share of blocks the check reads: 2%, 1/10, all (default: none, references only).")
            var verifySubset: String?

            func run() throws {
                try runClient { () throws(ConvoyError) in
                    let keep = try retention.policy()
                    var policy = ClientAPI.BackupPolicy(
                        volume: volume, destination: dest,
                        everySeconds: try DurationText.seconds(every, option: "--every"), at: at, keep: keep)
                    policy.verifyEverySeconds = try verifyEvery.map { text throws(ConvoyError) in
                        try DurationText.seconds(text, option: "--verify-every")
                    }
                    policy.verifySubset = verifySubset
                    Output.json(try ConvoyAPIClient(socketPath: client.socket).setPolicy(policy))
                }
            }
        }

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List the backup policies and their last runs.")
            @OptionGroup var client: ClientOptions

            func run() throws {
                try runClient { () throws(ConvoyError) in
                    let policies = try ConvoyAPIClient(socketPath: client.socket).policies()
                    guard client.format == .table else { return Output.json(policies) }
                    Output.table(header: ["VOLUME", "EVERY", "DEST", "LAST SUCCESS", "NEXT RUN", "LAST ERROR"],
                                 rows: policies.map { policy in
                                     [policy.volume, "\(Int(policy.everySeconds))s", policy.destination,
                                      policy.lastSuccess ?? "-", policy.nextRun ?? "-", policy.lastError ?? ""]
                                 })
                }
            }
        }

        struct Inspect: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Show a volume's backup policy.")
            @OptionGroup var client: ClientOptions
            @Argument(help: "The volume.") var volume: String

            func run() throws {
                try runClient { () throws(ConvoyError) in
                    Output.json(try ConvoyAPIClient(socketPath: client.socket).policy(of: volume))
                }
            }
        }

        struct Delete: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Stop a volume's scheduled backups (its backups and snapshots stay).")
            @OptionGroup var client: ClientOptions
            @Argument(help: "The volume.") var volume: String

            func run() throws {
                try runClient { () throws(ConvoyError) in
                    try ConvoyAPIClient(socketPath: client.socket).deletePolicy(of: volume)
                }
            }
        }
    }
}
