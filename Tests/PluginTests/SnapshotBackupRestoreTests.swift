import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
@testable import Plugin
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Snapshots, backups and restores through their own services, without a daemon: what a user checks is that
/// the bytes restored are the bytes snapshotted, that a snapshot is incremental, and that deleting a volume or
/// a backup leaves nothing behind.
final class SnapshotBackupRestoreTests: XCTestCase {
    func testSnapshotBackupAndRestoreGiveBackTheSnapshottedTree() async throws {
        let fixture = try ServiceFixture(self)
        _ = try await fixture.volumes.create(name: "src", options: ["size": "1G"])
        let source = try fixture.directory(of: "src")
        try TreeFixture.makeRichTree(at: source)
        let atSnapshot = try TreeFixture.describe(source)

        let first = try await fixture.ended(try await fixture.snapshots.createSnapshot(volume: "src", snapshot: "s1"))
        XCTAssertEqual(first.result?["Snapshot"], "s1")
        let s1 = try fixture.catalog.snapshot("s1")
        XCTAssertGreaterThan(s1.files, 5)
        XCTAssertGreaterThan(s1.bytesRead, 3 << 20)

        // Only what changed is read again.
        try TreeFixture.write(source + "/small.txt", Array("changed\n".utf8))
        _ = try await fixture.ended(try await fixture.snapshots.createSnapshot(volume: "src", snapshot: "s2"))
        XCTAssertLessThan(try fixture.catalog.snapshot("s2").bytesRead, 1 << 20)
        XCTAssertEqual(try fixture.catalog.snapshots(volume: "src").map(\.name), ["s1", "s2"])

        let destination = "vfs://" + fixture.root + "/store"
        let backup = try await fixture.ended(try await fixture.backups.createBackup(snapshot: "s1",
                                                                                     destination: destination))
        let url = try XCTUnwrap(backup.result?["URL"])
        let listed = try await fixture.backups.listBackups(destination: destination, volume: nil)
        XCTAssertEqual(listed.map(\.url), [url])
        XCTAssertEqual(listed.first?.snapshotName, "s1")
        let inspected = try await fixture.backups.inspectBackup(url)
        XCTAssertEqual(inspected.volumeName, "src")
        let verified = try await fixture.ended(try await fixture.backups.verifyBackup(url))
        XCTAssertEqual(verified.result?["Problems"], "0")

        let restored = try await fixture.restores.restore(name: "copy", backup: url, options: [:], wait: true)
        XCTAssertEqual(restored.state, .succeeded, "with wait, the restore answers once it has ended")
        XCTAssertEqual(restored.result?["Volume"], "copy")
        XCTAssertEqual(try TreeFixture.describe(try fixture.directory(of: "copy")), atSnapshot)
        XCTAssertEqual(try fixture.volumes.get("copy").size, 1 << 30, "the backup's recorded size")

        let deleted = try await fixture.backups.deleteBackup(url)
        XCTAssertEqual(deleted["Deleted"], url)
        XCTAssertNotEqual(deleted["BlocksFreed"], "0")
        let left = try await fixture.backups.listBackups(destination: destination, volume: nil)
        XCTAssertTrue(left.isEmpty)
    }

    /// What a snapshot could not record (here files of a directory an application keeps renaming) is named in the
    /// job and kept in the snapshot's record; the rest of the tree is snapshotted.
    func testASnapshotNamesWhatItLeftOut() async throws {
        let fixture = try ServiceFixture(self)
        _ = try await fixture.volumes.create(name: "src", options: [:])
        let source = try fixture.directory(of: "src")
        try TreeFixture.write(source + "/kept", Array("kept".utf8))
        try FileManager.default.createDirectory(atPath: source + "/d", withIntermediateDirectories: true)
        for index in 0..<200 { try TreeFixture.write(source + "/d/f\(index)", Array("moving \(index)".utf8)) }
        let stop = ConvoyTestSupport.StopFlag.renaming(source + "/d", to: ".moved", pause: 300)
        defer { stop.set() }
        // Each snapshot races the renames; the first that lost entries to them is the one to check.
        var attempt = 0
        var leftOut: (job: ClientAPI.Job, name: String)?
        while leftOut == nil && attempt < 100 {
            let name = "s\(attempt)"
            let job = try await fixture.ended(try await fixture.snapshots.createSnapshot(volume: "src", snapshot: name))
            XCTAssertEqual(job.state, .succeeded, "\(job)")
            if job.result?["Skipped"] != nil { leftOut = (job, name) }
            attempt += 1
        }
        stop.set()
        let (job, name) = try XCTUnwrap(leftOut, "100 snapshots of a directory renamed every 0.3 ms lost nothing")
        let summary = try XCTUnwrap(job.result?["Skipped"])
        XCTAssertTrue(summary.contains(" entries"), summary)
        XCTAssertTrue(summary.contains("convoy snapshot inspect \(name)"), summary)
        let snapshot = try fixture.catalog.snapshot(name)
        XCTAssertGreaterThan(snapshot.skipped?.count ?? 0, 0)
        XCTAssertTrue(snapshot.skipped?.allSatisfy { $0.hasPrefix("d") && $0.contains("during the") } ?? false,
                      "\(snapshot.skipped ?? [])")
        XCTAssertGreaterThanOrEqual(snapshot.files, 1, "the file that stayed put is in the snapshot")
    }

    /// What a crash leaves between two writes is swept at start: snapshot rows of a volume whose row went, and
    /// a snapshot in the local store without a row (written, or being deleted, when the daemon stopped).
    func testSnapshotsACrashLeftHalfRecordedAreSweptAtStart() async throws {
        let fixture = try ServiceFixture(self)
        for volume in ["gone", "kept"] {
            _ = try await fixture.volumes.create(name: volume, options: [:])
            try TreeFixture.write(try fixture.directory(of: volume) + "/f", TreeFixture.randomBytes(1 << 16, seed: 5))
        }
        for (volume, snapshot) in [("gone", "g1"), ("gone", "g2"), ("kept", "k1"), ("kept", "k2")] {
            _ = try await fixture.ended(try await fixture.snapshots.createSnapshot(volume: volume, snapshot: snapshot))
        }
        try fixture.store.delete("gone")  // the volume's row went; the crash came before its snapshots'
        try fixture.store.deleteSnapshot("k2")  // a snapshot whose row went before its manifest

        let repairs = await fixture.catalog.sweepOrphans(existingVolumes: ["kept"])
        XCTAssertTrue(repairs.contains { $0.hasPrefix("snapshots of volume gone") }, "\(repairs)")
        XCTAssertTrue(repairs.contains { $0.hasPrefix("snapshot k2 of volume kept") }, "\(repairs)")
        XCTAssertEqual(try fixture.catalog.snapshots(volume: nil).map(\.name), ["k1"])
        let left = try await fixture.catalog.local.backups().map(\.id)
        XCTAssertEqual(left, ["k1"])
        let again = await fixture.catalog.sweepOrphans(existingVolumes: ["kept"])
        XCTAssertEqual(again, [], "a second start finds nothing")
    }

    func testARestoreWithoutWaitAnswersAtOnceAndEndsWithTheVolume() async throws {
        let fixture = try ServiceFixture(self)
        _ = try await fixture.volumes.create(name: "src", options: [:])
        try TreeFixture.write(try fixture.directory(of: "src") + "/f", TreeFixture.randomBytes(1 << 20, seed: 3))
        _ = try await fixture.ended(try await fixture.snapshots.createSnapshot(volume: "src", snapshot: "s1"))
        let destination = "vfs://" + fixture.root + "/store"
        let backup = try await fixture.ended(
            try await fixture.backups.createBackup(snapshot: "s1", destination: destination))
        let url = try XCTUnwrap(backup.result?["URL"])

        let job = try await fixture.restores.restore(name: nil, backup: url, options: [:], wait: false)
        XCTAssertEqual(job.kind, "restore")
        let restored = try await fixture.ended(job)
        let name = try XCTUnwrap(restored.result?["Volume"])
        XCTAssertTrue(name.hasPrefix("volume-"), name)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: try fixture.directory(of: name) + "/f"))
        XCTAssertEqual(Array(bytes), TreeFixture.randomBytes(1 << 20, seed: 3))

        // A restore never replaces a volume: the name is taken, and the volume there keeps its data.
        let refused = await errorMessage {
            _ = try await fixture.restores.restore(name: name, backup: url, options: [:], wait: true)
        }
        XCTAssertTrue(refused.contains("exists already"), refused)
        XCTAssertTrue(FileManager.default.fileExists(atPath: try fixture.directory(of: name) + "/f"))
    }

    func testSnapshotNamesAreUniquePerDaemon() async throws {
        let fixture = try ServiceFixture(self)
        _ = try await fixture.volumes.create(name: "va", options: [:])
        _ = try await fixture.volumes.create(name: "vb", options: [:])
        _ = try await fixture.ended(try await fixture.snapshots.createSnapshot(volume: "va", snapshot: "same"))
        let kind = await errorKind { _ = try await fixture.snapshots.createSnapshot(volume: "vb", snapshot: "same") }
        XCTAssertEqual(kind, .conflict)
        // The refused name was released: the reservation does not outlive the refusal.
        try await fixture.catalog.delete("same")
        _ = try await fixture.ended(try await fixture.snapshots.createSnapshot(volume: "vb", snapshot: "same"))
        XCTAssertEqual(try fixture.catalog.snapshot("same").volumeName, "vb")
    }

    func testDeletingAVolumeDeletesItsSnapshotsAndTheirBlocks() async throws {
        let fixture = try ServiceFixture(self)
        _ = try await fixture.volumes.create(name: "gone", options: [:])
        _ = try await fixture.volumes.create(name: "kept", options: [:])
        try TreeFixture.write(try fixture.directory(of: "gone") + "/f", TreeFixture.randomBytes(2 << 20, seed: 4))
        try TreeFixture.write(try fixture.directory(of: "kept") + "/f", TreeFixture.randomBytes(2 << 20, seed: 5))
        _ = try await fixture.ended(try await fixture.snapshots.createSnapshot(volume: "gone", snapshot: "g1"))
        _ = try await fixture.ended(try await fixture.snapshots.createSnapshot(volume: "kept", snapshot: "k1"))

        try await fixture.volumes.remove("gone", fromDocker: false)
        XCTAssertEqual(try fixture.catalog.snapshots(volume: nil).map(\.name), ["k1"])
        let manifests = try await fixture.catalog.local.backups(volume: nil)
        XCTAssertEqual(manifests.map { $0.volume }, ["kept"])
        // The other volume's snapshot still restores.
        let problems = try await BackupVerifier(repository: fixture.catalog.local).verify(
            try await fixture.catalog.local.manifest(volume: "kept", backup: "k1"), progress: { _ in })
        XCTAssertTrue(problems.isEmpty)
    }

    func testAnEBSURLNeedsTheEBSDriverAndIsNeverABackupStore() async throws {
        let fixture = try ServiceFixture(self)
        let message = await errorMessage {
            _ = try await fixture.backups.inspectBackup("ebs://us-east-1/snap-0123456789abcdef0")
        }
        XCTAssertTrue(message.contains("ebs driver") && message.contains("--drivers"), message)
        let restore = await errorKind {
            _ = try await fixture.restores.restore(name: "restored", backup: "ebs://us-east-1/snap-0123456789abcdef0",
                                                   options: [:], wait: true)
        }
        XCTAssertEqual(restore, .unavailable)
        XCTAssertThrowsError(try fixture.volumes.get("restored"))
    }
}
