import Backupstore

/// How a snapshot of a busy volume tells what it left out (entries that vanished, moved or were replaced while
/// it read the tree): every listed entry in the snapshot's record, and a summary naming the first few in the job.
struct SkippedReport {
    /// The job result's key for the summary.
    static let resultKey = "Skipped"
    static let namedInSummary = 10

    let lines: [String]
    let summary: String

    /// `snapshot`: the snapshot whose record lists them all; nil for a backup read straight from a volume
    /// (only the job names them).
    init?(_ outcome: FileBackupWriter.Outcome, snapshot: String?) {
        guard outcome.skippedCount > 0 else { return nil }
        var lines = outcome.skipped.map(\.description)
        let unlisted = outcome.skippedCount - outcome.skipped.count
        if unlisted > 0 { lines.append("… and \(unlisted) more") }
        self.lines = lines
        let named = outcome.skipped.prefix(Self.namedInSummary).map(\.path.description).joined(separator: ", ")
        let more = outcome.skippedCount > Self.namedInSummary ? ", …" : ""
        let work = snapshot == nil ? "backup" : "snapshot"
        summary = "\(outcome.skippedCount) entries changed while the \(work) ran and were left out (\(named)\(more))"
            + (snapshot.map { "; convoy snapshot inspect \($0) lists them" } ?? "")
    }
}
