import ConvoyCore
import Foundation
import GRDB

/// Snapshots and jobs in the state database.
extension StateStore {
    public func insertSnapshot(_ snapshot: ClientAPI.Snapshot) throws(ConvoyError) {
        try write("record snapshot \(snapshot.name)") { db in
            try db.execute(sql: """
                INSERT INTO snapshot
                    (name, volume, created_at, size, files, bytes_read, new_bytes, driver_info, skipped)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [snapshot.name, snapshot.volumeName, snapshot.createdTime,
                                 Int64(clamping: snapshot.size), snapshot.files, Int64(clamping: snapshot.bytesRead),
                                 Int64(clamping: snapshot.newBytesStored), Self.encode(snapshot.driverInfo ?? [:]),
                                 Self.encode(snapshot.skipped ?? [])])
        }
    }

    public func snapshot(named name: String) throws(ConvoyError) -> ClientAPI.Snapshot? {
        try read("read snapshot \(name)") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM snapshot WHERE name = ?", arguments: [name]).map(Self.snapshot)
        }
    }

    /// Snapshots of one volume (or all), oldest first.
    public func snapshots(volume: String?) throws(ConvoyError) -> [ClientAPI.Snapshot] {
        try read("list snapshots") { db in
            if let volume {
                return try Row.fetchAll(db, sql: "SELECT * FROM snapshot WHERE volume = ? ORDER BY created_at, name",
                                        arguments: [volume]).map(Self.snapshot)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM snapshot ORDER BY volume, created_at, name")
                .map(Self.snapshot)
        }
    }

    public func deleteSnapshot(_ name: String) throws(ConvoyError) {
        try write("forget snapshot \(name)") { db in
            try db.execute(sql: "DELETE FROM snapshot WHERE name = ?", arguments: [name])
        }
    }

    private static func snapshot(_ row: Row) -> ClientAPI.Snapshot {
        let info = (try? JSONDecoder().decode([String: String].self,
                                              from: Data((row["driver_info"] as String? ?? "{}").utf8))) ?? [:]
        let skipped = (try? JSONDecoder().decode([String].self,
                                                 from: Data((row["skipped"] as String? ?? "[]").utf8))) ?? []
        return ClientAPI.Snapshot(
            name: row["name"], volumeName: row["volume"], createdTime: row["created_at"],
            size: UInt64(clamping: row["size"] as Int64), files: row["files"],
            bytesRead: UInt64(clamping: row["bytes_read"] as Int64),
            newBytesStored: UInt64(clamping: row["new_bytes"] as Int64),
            driverInfo: info.isEmpty ? nil : info, skipped: skipped.isEmpty ? nil : skipped)
    }

    private static func encode(_ info: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(info)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    // MARK: Jobs

    public func saveJob(_ job: ClientAPI.Job) throws(ConvoyError) {
        let result = job.result.flatMap { try? JSONEncoder().encode($0) }.map { String(decoding: $0, as: UTF8.self) }
        try write("record job \(job.id)") { db in
            try db.execute(sql: """
                INSERT OR REPLACE INTO job (id, kind, target, state, started_at, finished_at, result, error)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [job.id, job.kind, job.target, job.state.rawValue, job.startedAt, job.finishedAt,
                                 result, job.error])
        }
    }

    public func jobs() throws(ConvoyError) -> [ClientAPI.Job] {
        try read("list jobs") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM job ORDER BY started_at DESC, id LIMIT 200").map(Self.job)
        }
    }

    /// One job by id, nil when there is none (or it was pruned).
    public func job(_ id: String) throws(ConvoyError) -> ClientAPI.Job? {
        try read("read job \(id)") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM job WHERE id = ?", arguments: [id]).map(Self.job)
        }
    }

    /// Forgets ended jobs beyond the `keep` that ended last (a row is rewritten when its job ends, so rowid
    /// order is end order), so the table does not grow forever. Running jobs stay.
    public func pruneJobs(keeping keep: Int) throws(ConvoyError) {
        try write("prune jobs") { db in
            try db.execute(sql: """
                DELETE FROM job WHERE state != 'running' AND id NOT IN
                (SELECT id FROM job WHERE state != 'running' ORDER BY rowid DESC LIMIT ?)
                """, arguments: [keep])
        }
    }

    private static func job(_ row: Row) -> ClientAPI.Job {
        let result = (row["result"] as String?).flatMap {
            try? JSONDecoder().decode([String: String].self, from: Data($0.utf8))
        }
        return ClientAPI.Job(
            id: row["id"], kind: row["kind"], target: row["target"],
            state: ClientAPI.Job.State(rawValue: row["state"]) ?? .interrupted, phase: "",
            bytesDone: 0, bytesTotal: 0, itemsDone: 0, itemsTotal: 0, startedAt: row["started_at"],
            finishedAt: row["finished_at"], result: result, error: row["error"])
    }

    /// Jobs recorded as running belong to a daemon that died: mark them interrupted. Returns their ids.
    public func interruptRunningJobs(at time: String) throws(ConvoyError) -> [String] {
        try write("mark interrupted jobs") { db in
            let ids = try String.fetchAll(db, sql: "SELECT id FROM job WHERE state = 'running'")
            try db.execute(sql: """
                UPDATE job SET state = 'interrupted', finished_at = ?,
                error = 'the daemon stopped while this job ran; run it again' WHERE state = 'running'
                """, arguments: [time])
            return ids
        }
    }
}
