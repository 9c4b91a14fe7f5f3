import ConvoyCore
import Foundation
import GRDB
import Synchronization

/// The daemon's index in SQLite (`<root>/convoy.db`): volumes, mount references by ID, daemon configuration.
/// WAL mode with `synchronous = FULL`, so a committed change survives power loss; every multi-row change is one
/// transaction, so a crash never leaves half of one.
///
/// Reads are served from an in-memory copy of the volume table, refreshed from the database after every write
/// that touches a volume: Docker calls Get several times per container start, and they should cost no I/O.
/// Writes to one volume are serialized by the caller (VolumeService's per-volume lock), so each refresh lands in
/// commit order.
public final class StateStore: Sendable {
    let pool: DatabasePool
    private let cache = Mutex<[String: VolumeRecord]>([:])
    public let path: String

    public init(path: String) throws(ConvoyError) {
        self.path = path
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(5)
            configuration.prepareDatabase { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
            }
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
            let all = try pool.read { db in try Self.fetchAll(db) }
            cache.withLock { $0 = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) }) }
        } catch {
            throw ConvoyError(.stateFailure, "cannot open the state database \(path): \(error)")
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: volumes, references, config") { db in
            try db.execute(sql: """
                CREATE TABLE volume (
                    name TEXT PRIMARY KEY NOT NULL,
                    driver TEXT NOT NULL,
                    size INTEGER NOT NULL DEFAULT 0,
                    created_at TEXT NOT NULL,
                    state TEXT NOT NULL,
                    options TEXT NOT NULL,
                    driver_info TEXT NOT NULL,
                    mountpoint TEXT
                );
                CREATE TABLE mount_reference (
                    volume TEXT NOT NULL REFERENCES volume(name) ON DELETE CASCADE,
                    reference_id TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    PRIMARY KEY (volume, reference_id)
                );
                CREATE TABLE daemon_config (
                    key TEXT PRIMARY KEY NOT NULL,
                    value TEXT NOT NULL
                );
                """)
        }
        migrator.registerMigration("v2: snapshots, jobs") { db in
            try db.execute(sql: """
                CREATE TABLE snapshot (
                    name TEXT PRIMARY KEY NOT NULL,
                    volume TEXT NOT NULL,
                    created_at TEXT NOT NULL,
                    size INTEGER NOT NULL,
                    files INTEGER NOT NULL,
                    bytes_read INTEGER NOT NULL,
                    new_bytes INTEGER NOT NULL
                );
                CREATE INDEX snapshot_by_volume ON snapshot(volume, created_at);
                CREATE TABLE job (
                    id TEXT PRIMARY KEY NOT NULL,
                    kind TEXT NOT NULL,
                    target TEXT NOT NULL,
                    state TEXT NOT NULL,
                    started_at TEXT NOT NULL,
                    finished_at TEXT,
                    result TEXT,
                    error TEXT
                );
                """)
        }
        migrator.registerMigration("v3: snapshots kept by drivers") { db in
            try db.execute(sql: "ALTER TABLE snapshot ADD COLUMN driver_info TEXT NOT NULL DEFAULT '{}'")
        }
        migrator.registerMigration("v4: entries a snapshot left out") { db in
            try db.execute(sql: "ALTER TABLE snapshot ADD COLUMN skipped TEXT NOT NULL DEFAULT '[]'")
        }
        migrator.registerMigration("v5: CSI snapshots") { db in
            try db.execute(sql: """
                CREATE TABLE csi_snapshot (
                    name TEXT PRIMARY KEY NOT NULL,
                    source_volume TEXT NOT NULL,
                    destination TEXT NOT NULL,
                    backup_id TEXT NOT NULL,
                    local_snapshot TEXT NOT NULL,
                    job TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    size INTEGER NOT NULL,
                    url TEXT
                );
                CREATE INDEX csi_snapshot_by_url ON csi_snapshot(url);
                """)
        }
        migrator.registerMigration("v6: backup policies") { db in
            try db.execute(sql: Self.backupPolicyTable)
        }
        migrator.registerMigration("v7: backup policies verify their destination") { db in
            try db.execute(sql: """
                ALTER TABLE backup_policy ADD COLUMN verify_every REAL;
                ALTER TABLE backup_policy ADD COLUMN verify_subset TEXT;
                ALTER TABLE backup_policy ADD COLUMN last_verify REAL;
                """)
        }
        return migrator
    }

    // MARK: Reads

    public func volume(named name: String) throws(ConvoyError) -> VolumeRecord? {
        cache.withLock { $0[name] }
    }

    public func volumes() throws(ConvoyError) -> [VolumeRecord] {
        cache.withLock { Array($0.values) }.sorted { $0.name < $1.name }
    }

    private static func fetchOne(_ db: Database, _ name: String) throws -> VolumeRecord? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM volume WHERE name = ?", arguments: [name]) else {
            return nil
        }
        let references = try String.fetchAll(
            db, sql: "SELECT reference_id FROM mount_reference WHERE volume = ? ORDER BY seq", arguments: [name])
        return try record(from: row, references: references)
    }

    private static func fetchAll(_ db: Database) throws -> [VolumeRecord] {
        var references: [String: [String]] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT volume, reference_id FROM mount_reference ORDER BY seq") {
            references[row["volume"], default: []].append(row["reference_id"])
        }
        return try Row.fetchAll(db, sql: "SELECT * FROM volume ORDER BY name").map { row in
            try record(from: row, references: references[row["name"] as String] ?? [])
        }
    }

    public func config(_ key: String) throws(ConvoyError) -> String? {
        try read("read config \(key)") { db in
            try String.fetchOne(db, sql: "SELECT value FROM daemon_config WHERE key = ?", arguments: [key])
        }
    }

    // MARK: Writes

    /// Inserts a new volume; a volume of that name must not exist.
    public func insert(_ record: VolumeRecord) throws(ConvoyError) {
        try writeVolume(record.name, "record volume \(record.name)") { db in
            try db.execute(sql: """
                INSERT INTO volume (name, driver, size, created_at, state, options, driver_info, mountpoint)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [record.name, record.driver, Int64(clamping: record.size), record.createdAt,
                                 record.state.rawValue, try Self.json(record.options), try Self.json(record.driverInfo),
                                 record.mountpoint])
        }
    }

    /// A volume grown: its size and the driver info that says so.
    public func setSize(_ size: UInt64, driverInfo: [String: String], of name: String) throws(ConvoyError) {
        try writeVolume(name, "record the new size of volume \(name)") { db in
            try db.execute(sql: "UPDATE volume SET size = ?, driver_info = ? WHERE name = ?",
                           arguments: [Int64(clamping: size), try Self.json(driverInfo), name])
        }
    }

    public func update(_ name: String, state: VolumeState, driverInfo: [String: String]? = nil) throws(ConvoyError) {
        try writeVolume(name, "update volume \(name)") { db in
            if let driverInfo {
                try db.execute(sql: "UPDATE volume SET state = ?, driver_info = ? WHERE name = ?",
                               arguments: [state.rawValue, try Self.json(driverInfo), name])
            } else {
                try db.execute(sql: "UPDATE volume SET state = ? WHERE name = ?", arguments: [state.rawValue, name])
            }
        }
    }

    /// Removes the volume and, with it, its references.
    public func delete(_ name: String) throws(ConvoyError) {
        try writeVolume(name, "forget volume \(name)") { db in
            try db.execute(sql: "DELETE FROM volume WHERE name = ?", arguments: [name])
        }
    }

    /// Adds a reference (no-op if present) and records the mountpoint; returns the reference count.
    @discardableResult
    public func addReference(_ referenceID: String, to name: String, mountpoint: String) throws(ConvoyError) -> Int {
        try writeVolume(name, "add reference \(referenceID) to \(name)") { db in
            try db.execute(sql: """
                INSERT OR IGNORE INTO mount_reference (volume, reference_id, seq)
                VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM mount_reference))
                """, arguments: [name, referenceID])
            try db.execute(sql: "UPDATE volume SET mountpoint = ? WHERE name = ?", arguments: [mountpoint, name])
            return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM mount_reference WHERE volume = ?",
                                    arguments: [name]) ?? 0
        }
    }

    /// Removes a reference; returns whether it existed and how many remain.
    public func removeReference(_ referenceID: String,
                                from name: String) throws(ConvoyError) -> (existed: Bool, remaining: Int) {
        try writeVolume(name, "remove reference \(referenceID) from \(name)") { db in
            try db.execute(sql: "DELETE FROM mount_reference WHERE volume = ? AND reference_id = ?",
                           arguments: [name, referenceID])
            let existed = db.changesCount > 0
            let remaining = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM mount_reference WHERE volume = ?",
                                             arguments: [name]) ?? 0
            return (existed, remaining)
        }
    }

    public func setMountpoint(_ mountpoint: String?, of name: String) throws(ConvoyError) {
        try writeVolume(name, "record mountpoint of \(name)") { db in
            try db.execute(sql: "UPDATE volume SET mountpoint = ? WHERE name = ?", arguments: [mountpoint, name])
        }
    }

    public func setConfig(_ key: String, _ value: String) throws(ConvoyError) {
        try write("save config \(key)") { db in
            try db.execute(sql: "INSERT OR REPLACE INTO daemon_config (key, value) VALUES (?, ?)",
                           arguments: [key, value])
        }
    }

    // MARK: Plumbing

    func read<T>(_ what: String, _ body: (Database) throws -> T) throws(ConvoyError) -> T {
        do { return try pool.read(body) } catch { throw Self.failure(what, error) }
    }

    func write<T>(_ what: String, _ body: (Database) throws -> T) throws(ConvoyError) -> T {
        do { return try pool.write(body) } catch { throw Self.failure(what, error) }
    }

    /// A write that changes volume `name`; the cached copy is replaced by what the transaction committed.
    private func writeVolume<T>(_ name: String, _ what: String,
                                _ body: (Database) throws -> T) throws(ConvoyError) -> T {
        let (result, fresh) = try write(what) { db in (try body(db), try Self.fetchOne(db, name)) }
        cache.withLock { $0[name] = fresh }
        return result
    }

    private static func failure(_ what: String, _ error: any Error) -> ConvoyError {
        if let convoy = error as? ConvoyError { return convoy }
        if let db = error as? DatabaseError, db.resultCode == .SQLITE_CONSTRAINT {
            return ConvoyError(.conflict, "cannot \(what): \(db.message ?? "constraint violated")")
        }
        return ConvoyError(.stateFailure, "cannot \(what) in the state database: \(error)")
    }

    private static func record(from row: Row, references: [String]) throws -> VolumeRecord {
        let stateText: String = row["state"]
        guard let state = VolumeState(rawValue: stateText) else {
            throw ConvoyError(.stateFailure, "volume \(row["name"] as String) has unknown state '\(stateText)'")
        }
        let size: Int64 = row["size"]
        return VolumeRecord(
            name: row["name"], driver: row["driver"], size: UInt64(clamping: size), createdAt: row["created_at"],
            state: state, options: try dictionary(row["options"]), driverInfo: try dictionary(row["driver_info"]),
            mountpoint: row["mountpoint"], references: references)
    }

    private static func json(_ value: [String: String]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    private static func dictionary(_ text: String) throws -> [String: String] {
        try JSONDecoder().decode([String: String].self, from: Data(text.utf8))
    }
}
