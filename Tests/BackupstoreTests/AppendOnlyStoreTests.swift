@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest

/// A destination this host only adds to: backups and restores work, nothing is ever deleted, what would delete is
/// refused before it starts, and a trusted host collects afterwards.
final class AppendOnlyStoreTests: XCTestCase {
    var scratch = ""

    override func setUpWithError() throws {
        scratch = try TreeFixture.temporaryDirectory("append")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: scratch)
    }

    func keys(_ store: any ObjectStore) async throws -> Set<String> {
        Set(try await store.list(prefix: "").map(\.key))
    }

    func testNothingIsDeletedAndATrustedHostCollectsLater() async throws {
        let base = try FileObjectStore(root: scratch + "/store")
        let appendOnly = BackupRepository(store: AppendOnlyObjectStore(base: base))
        let source = scratch + "/source"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        for index in 0..<4 {
            try TreeFixture.write(source + "/f\(index)", TreeFixture.randomBytes(1 << 20, seed: UInt64(index)))
        }
        let writer = FileBackupWriter(repository: appendOnly)
        let first = try await writer.backup(.init(source: source, volume: "vol", backupID: "backup-1", snapshot: nil,
                                                  parent: nil, volumeSize: 0)).manifest
        try TreeFixture.write(source + "/f0", TreeFixture.randomBytes(1 << 20, seed: 99))
        _ = try await writer.backup(.init(source: source, volume: "vol", backupID: "backup-2", snapshot: nil,
                                          parent: first, volumeSize: 0))
        // The backups' leases were released by being rewritten as expired, not deleted.
        let leases = try await base.list(prefix: "convoy-backupstore/leases/")
        XCTAssertEqual(leases.count, 2)
        let before = try await keys(base)

        for attempt in ["delete", "collect"] {
            do {
                if attempt == "delete" {
                    try await appendOnly.deleteManifest(volume: "vol", backup: "backup-1")
                } else {
                    _ = try await GarbageCollector(repository: appendOnly).collect()
                }
                XCTFail("\(attempt) ran on an append-only store")
            } catch {
                XCTAssertEqual(error.kind, .invalidArgument)
                XCTAssertTrue(error.message.contains("append-only") && error.message.contains("trusted host"),
                              error.message)
            }
        }
        let after = try await keys(base)
        XCTAssertEqual(after, before, "an object was added or removed by a refused deletion")

        // Restores read it as any store.
        let target = scratch + "/restored"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try await FileRestorer(repository: appendOnly).restore(
            try await appendOnly.manifest(volume: "vol", backup: "backup-1"), into: target)
        XCTAssertEqual(try TreeFixture.describe(target + "/f1"), try TreeFixture.describe(source + "/f1"))

        // A trusted host (no append-only view) forgets and collects at once: the expired leases hold nobody off.
        let trusted = BackupRepository(store: base)
        try await trusted.deleteManifest(volume: "vol", backup: "backup-1")
        let collected = try await GarbageCollector(repository: trusted).collect()
        XCTAssertNil(collected.deferredBecause)
        XCTAssertGreaterThan(collected.blocksDeleted, 0)
        let left = try await base.list(prefix: "convoy-backupstore/leases/")
        XCTAssertEqual(left.count, 0, "expired leases are removed by the trusted collection")
    }
}
