import ConvoyCore
import Foundation
import GRDB

/// A CSI snapshot as this daemon made it (`CSISnapshots`): the CO's name, the volume it was cut from, and the
/// backup it becomes. `url` is set once the backup is written; until then the snapshot is being cut or uploaded
/// by `job`.
public struct CSISnapshotRecord: Sendable, Equatable {
    public var name: String
    public var sourceVolume: String
    public var destination: String
    public var backupID: String
    /// The local snapshot the backup is made from, deleted with the CSI snapshot.
    public var localSnapshot: String
    public var job: String
    public var createdAt: Date
    /// The source volume's size when it was cut: the least a volume restored from it holds.
    public var size: UInt64
    public var url: String?
}

extension StateStore {
    public func insertCSISnapshot(_ record: CSISnapshotRecord) throws(ConvoyError) {
        try write("record CSI snapshot \(record.name)") { db in
            try db.execute(sql: """
                INSERT INTO csi_snapshot
                    (name, source_volume, destination, backup_id, local_snapshot, job, created_at, size, url)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [record.name, record.sourceVolume, record.destination, record.backupID,
                                 record.localSnapshot, record.job, record.createdAt.timeIntervalSince1970,
                                 Int64(clamping: record.size), record.url])
        }
    }

    public func csiSnapshot(named name: String) throws(ConvoyError) -> CSISnapshotRecord? {
        try read("read CSI snapshot \(name)") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM csi_snapshot WHERE name = ?", arguments: [name])
                .map(Self.csiSnapshot)
        }
    }

    public func csiSnapshot(url: String) throws(ConvoyError) -> CSISnapshotRecord? {
        try read("read CSI snapshot \(url)") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM csi_snapshot WHERE url = ?", arguments: [url])
                .map(Self.csiSnapshot)
        }
    }

    /// Every CSI snapshot, in name order.
    public func csiSnapshots() throws(ConvoyError) -> [CSISnapshotRecord] {
        try read("list CSI snapshots") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM csi_snapshot ORDER BY name").map(Self.csiSnapshot)
        }
    }

    public func setCSISnapshotURL(_ url: String, of name: String) throws(ConvoyError) {
        try write("record the backup of CSI snapshot \(name)") { db in
            try db.execute(sql: "UPDATE csi_snapshot SET url = ? WHERE name = ?", arguments: [url, name])
        }
    }

    public func deleteCSISnapshot(_ name: String) throws(ConvoyError) {
        try write("forget CSI snapshot \(name)") { db in
            try db.execute(sql: "DELETE FROM csi_snapshot WHERE name = ?", arguments: [name])
        }
    }

    private static func csiSnapshot(_ row: Row) -> CSISnapshotRecord {
        CSISnapshotRecord(name: row["name"], sourceVolume: row["source_volume"], destination: row["destination"],
                          backupID: row["backup_id"], localSnapshot: row["local_snapshot"], job: row["job"],
                          createdAt: Date(timeIntervalSince1970: row["created_at"]),
                          size: UInt64(clamping: row["size"] as Int64), url: row["url"])
    }
}
