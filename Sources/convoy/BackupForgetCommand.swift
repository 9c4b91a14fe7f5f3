import ArgumentParser
import ConvoyClient
import ConvoyCore

extension BackupCommand {
    /// `convoy backup forget`: restic's `forget` for a destination, volume by volume.
    struct Forget: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete the backups a retention policy does not keep (each volume's on their own).",
            discussion: """
                Backups are taken newest first. --keep-last N keeps the N newest; --keep-hourly/daily/weekly/\
                monthly/yearly N keep the newest backup of each of the N most recent hours (days, ISO weeks, \
                months, years, in UTC) that have one; --keep-within D keeps every backup taken within D of the \
                newest. A backup is kept when any rule keeps it; -1 means no limit. A backup a lazily restored \
                volume still reads is always kept. Then the blocks only the forgotten backups used are freed: a pack more \
                than a fifth dead is rewritten, one less dead keeps its dead blocks until more of it dies \
                (--repack-all rewrites every one), and small packs are merged.
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The destination: vfs:///path, s3://bucket@region/path or ebs://.") var dest: String
        @Option(help: "Only this volume's backups.") var volumeName: String?
        @OptionGroup var keep: RetentionOptions
        @Flag(help: "Say what would be forgotten; delete nothing.") var dryRun = false
        @Flag(help: "Rewrite every pack holding a forgotten block, so none of its data stays in the store.")
        var repackAll = false
        @OptionGroup var password: StorePassword

        func run() throws {
            try runClient { () throws(ConvoyError) in
                let policy = try keep.policy()
                try policy.validate()
                let api = ConvoyAPIClient(socketPath: client.socket)
                if !dest.hasPrefix("ebs:") { try password.unlock(api, dest) }
                let result = try api.forget(.init(
                    destination: dest, volumeName: volumeName, policy: policy, dryRun: dryRun,
                    repackAll: repackAll ? true : nil))
                Output.forgotten(result, format: client.format)
            }
        }
    }
}

extension Output {
    static func forgotten(_ result: ClientAPI.ForgetResult, format: OutputFormat) {
        guard format == .table else { return json(result) }
        table(header: ["VOLUME", "CREATED", result.dryRun ? "WOULD" : "DONE", "WHY", "URL"],
              rows: result.backups.map { entry in
                  [entry.volumeName, entry.createdTime, entry.keep ? "keep" : "forget",
                   entry.reasons.joined(separator: ","), entry.url]
              })
        let kept = result.backups.filter(\.keep).count
        let forgotten = result.backups.count - kept
        print("\(kept) kept, \(forgotten) \(result.dryRun ? "would be forgotten (dry run)" : "forgotten")")
        if let collection = result.collection {
            print(collection.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
    }
}

/// The `--keep-*` rules of `backup forget` and `backup policy set`.
struct RetentionOptions: ParsableArguments {
    @Option(help: "Keep the N newest backups.") var keepLast: Int?
    @Option(help: "Keep the newest backup of each of the N most recent hours with one.") var keepHourly: Int?
    @Option(help: "... days.") var keepDaily: Int?
    @Option(help: "... ISO weeks.") var keepWeekly: Int?
    @Option(help: "... months.") var keepMonthly: Int?
    @Option(help: "... years.") var keepYearly: Int?
    @Option(help: "Keep every backup taken within this long of the newest (7d, 12h, 1y...).")
    var keepWithin: String?

    func policy() throws(ConvoyError) -> RetentionPolicy {
        RetentionPolicy(
            last: keepLast, hourly: keepHourly, daily: keepDaily, weekly: keepWeekly, monthly: keepMonthly,
            yearly: keepYearly,
            within: try keepWithin.map { text throws(ConvoyError) in
                try DurationText.seconds(text, option: "--keep-within")
            })
    }
}
