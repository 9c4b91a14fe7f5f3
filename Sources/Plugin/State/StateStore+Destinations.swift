import ConvoyCore
import Foundation
import GRDB

/// The backup destinations this daemon has written a backup to (`BackupDestinations`): one `daemon_config` row
/// each, `backup-destination <url>` → when the first backup went there. Rows are only added: a destination once
/// written stays readable.
extension StateStore {
    static let writtenDestinationKey = "backup-destination "

    /// Whether a backup was written to `url` (a destination as `BackupDestinations` records it).
    public func wroteBackups(to url: String) throws(ConvoyError) -> Bool {
        try config(Self.writtenDestinationKey + url) != nil
    }

    public func recordBackupWritten(to url: String, at time: String) throws(ConvoyError) {
        try write("record backup destination \(url)") { db in
            try db.execute(sql: "INSERT OR IGNORE INTO daemon_config (key, value) VALUES (?, ?)",
                           arguments: [Self.writtenDestinationKey + url, time])
        }
    }

    /// Every destination written to, oldest first.
    public func writtenDestinations() throws(ConvoyError) -> [String] {
        try read("list backup destinations") { db in
            try String.fetchAll(db, sql: "SELECT key FROM daemon_config WHERE substr(key, 1, ?) = ? ORDER BY value",
                                arguments: [Self.writtenDestinationKey.count, Self.writtenDestinationKey])
        }.map { String($0.dropFirst(Self.writtenDestinationKey.count)) }
    }
}

extension StateStore {
    /// The backup URLs of the `backup create` jobs that succeeded, as the job history holds them (the last
    /// `JobManager.keptJobs`): what a daemon from before the destination list wrote.
    public func backupURLsInJobHistory() throws(ConvoyError) -> [String] {
        try read("read backup jobs") { db in
            try String.fetchAll(db, sql: """
                SELECT result FROM job WHERE kind = 'backup create' AND state = 'succeeded' AND result IS NOT NULL
                """)
        }.compactMap { text in
            (try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)))?["URL"]
        }
    }
}
