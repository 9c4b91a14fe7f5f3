import ConvoyCore
import Foundation
import GRDB

/// Backup policies (`BackupScheduler`): one per volume, with what its runs did. (Column `last_snapshot`, from
/// migration v6, is no longer written: a run finds its scheduled snapshots by their `scheduled-` names.)
public struct PolicyRecord: Sendable, Equatable {
    public var policy: ClientAPI.BackupPolicy
    public var createdAt: Date
    public var lastSuccess: Date?
    public var lastAttempt: Date?
    public var lastVerify: Date?

    public var schedule: BackupSchedule {
        get throws(ConvoyError) { try BackupSchedule(every: policy.everySeconds, at: policy.at, createdAt: createdAt) }
    }
}

extension StateStore {
    static let backupPolicyTable = """
        CREATE TABLE backup_policy (
            volume TEXT PRIMARY KEY NOT NULL,
            destination TEXT NOT NULL,
            every_seconds REAL NOT NULL,
            at TEXT,
            keep TEXT NOT NULL,
            created_at REAL NOT NULL,
            last_success REAL,
            last_attempt REAL,
            last_job TEXT,
            last_backup TEXT,
            last_error TEXT,
            last_snapshot TEXT
        )
        """

    /// Sets the volume's policy; a policy that existed keeps its creation time and what its runs did.
    public func setPolicy(_ policy: ClientAPI.BackupPolicy, createdAt: Date) throws(ConvoyError) {
        let keep = String(decoding: (try? JSONEncoder().encode(policy.keep)) ?? Data("{}".utf8), as: UTF8.self)
        try write("record the backup policy of volume \(policy.volume)") { db in
            try db.execute(sql: """
                INSERT INTO backup_policy (volume, destination, every_seconds, at, keep, created_at, verify_every,
                                           verify_subset)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(volume) DO UPDATE SET destination = excluded.destination,
                    every_seconds = excluded.every_seconds, at = excluded.at, keep = excluded.keep,
                    verify_every = excluded.verify_every, verify_subset = excluded.verify_subset
                """, arguments: [policy.volume, policy.destination, policy.everySeconds, policy.at, keep,
                                 createdAt.timeIntervalSince1970, policy.verifyEverySeconds, policy.verifySubset])
        }
    }

    public func policy(of volume: String) throws(ConvoyError) -> PolicyRecord? {
        try read("read the backup policy of volume \(volume)") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM backup_policy WHERE volume = ?", arguments: [volume])
                .map(Self.policyRecord)
        }
    }

    /// Every policy, in volume order.
    public func policies() throws(ConvoyError) -> [PolicyRecord] {
        try read("list backup policies") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM backup_policy ORDER BY volume").map(Self.policyRecord)
        }
    }

    public func deletePolicy(of volume: String) throws(ConvoyError) {
        try write("delete the backup policy of volume \(volume)") { db in
            try db.execute(sql: "DELETE FROM backup_policy WHERE volume = ?", arguments: [volume])
        }
    }

    /// A run begins: recorded before any work, so a crash in it is a failed attempt, not a run never made.
    public func recordPolicyAttempt(of volume: String, at date: Date, job: String) throws(ConvoyError) {
        try write("record a backup policy run of volume \(volume)") { db in
            try db.execute(sql: "UPDATE backup_policy SET last_attempt = ?, last_job = ? WHERE volume = ?",
                           arguments: [date.timeIntervalSince1970, job, volume])
        }
    }

    /// A run ended: a success moves the schedule on and keeps its snapshot as the next base; a failure says why.
    public func recordPolicyResult(of volume: String, success: (at: Date, backup: String)?,
                                   error: String?) throws(ConvoyError) {
        try write("record a backup policy result of volume \(volume)") { db in
            if let success {
                try db.execute(sql: """
                    UPDATE backup_policy SET last_success = ?, last_backup = ?, last_error = ?
                    WHERE volume = ?
                    """, arguments: [success.at.timeIntervalSince1970, success.backup, error,
                                     volume])
            } else {
                try db.execute(sql: "UPDATE backup_policy SET last_error = ? WHERE volume = ?",
                               arguments: [error, volume])
            }
        }
    }

    /// A check of the destination ended (whatever it found: the problems are the run's error).
    public func recordPolicyVerify(of volume: String, at date: Date) throws(ConvoyError) {
        try write("record a backup policy check of volume \(volume)") { db in
            try db.execute(sql: "UPDATE backup_policy SET last_verify = ? WHERE volume = ?",
                           arguments: [date.timeIntervalSince1970, volume])
        }
    }

    private static func policyRecord(_ row: Row) -> PolicyRecord {
        let keepText: String = row["keep"]
        var policy = ClientAPI.BackupPolicy(
            volume: row["volume"], destination: row["destination"], everySeconds: row["every_seconds"],
            at: row["at"], keep: (try? JSONDecoder().decode(RetentionPolicy.self, from: Data(keepText.utf8)))
                ?? RetentionPolicy())
        policy.lastJob = row["last_job"]
        policy.lastBackup = row["last_backup"]
        policy.lastError = row["last_error"]
        policy.verifyEverySeconds = row["verify_every"]
        policy.verifySubset = row["verify_subset"]
        let date = { (column: String) -> Date? in
            (row[column] as Double?).map { Date(timeIntervalSince1970: $0) }
        }
        return PolicyRecord(policy: policy, createdAt: date("created_at") ?? Date(timeIntervalSince1970: 0),
                            lastSuccess: date("last_success"), lastAttempt: date("last_attempt"),
                            lastVerify: date("last_verify"))
    }
}
