import AWS
@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The backup-store behaviour every object store backend must show. Each backend's test class calls these with
/// a fresh store; the bodies are shared so the backends run the same suite.
struct BackupSuite {
    let store: any ObjectStore
    let scratch: String
    /// An encrypted store's keys: the suite then runs on an encrypted store.
    var cipher: StoreCipher? = nil
    /// Corrupts or removes an object behind the store's back (as a disk or another client would).
    let damage: (_ key: String, _ remove: Bool) async throws -> Void

    var repository: BackupRepository { BackupRepository(store: store, cipher: cipher) }

    /// Damage done to a directory store's object behind its back: a byte flipped in the middle, or the file removed.
    static func fileDamage(_ store: FileObjectStore) -> (String, Bool) async throws -> Void {
        { key, remove in
            let path = store.root + "/" + key
            if remove {
                try FileManager.default.removeItem(atPath: path)
            } else {
                var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
                bytes[bytes.count / 2] ^= 0xff
                try Data(bytes).write(to: URL(fileURLWithPath: path))
            }
        }
    }

    /// The same on S3, through a client of its own.
    static func s3Damage(_ client: S3Client, prefix: String) -> (String, Bool) async throws -> Void {
        { key, remove in
            if remove {
                try await client.deleteObject(key: prefix + key)
            } else {
                var bytes = try await client.getObject(key: prefix + key)
                bytes[bytes.count / 2] ^= 0xff
                try await client.putObject(key: prefix + key, bytes: bytes)
            }
        }
    }

    func backup(_ source: String, volume: String, id: String, parent: Manifest? = nil) async throws -> Manifest {
        try await FileBackupWriter(repository: repository).backup(.init(
            source: source, volume: volume, backupID: id, snapshot: nil, parent: parent, volumeSize: 0)).manifest
    }

    func restore(volume: String, id: String, label: String) async throws -> String {
        let target = scratch + "/" + label
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let manifest = try await repository.manifest(volume: volume, backup: id)
        try await FileRestorer(repository: repository).restore(manifest, into: target)
        return target
    }

    func roundTripEveryKindOfEntry() async throws {
        let source = scratch + "/source"
        try TreeFixture.makeRichTree(at: source)
        let manifest = try await backup(source, volume: "rich", id: "backup-rich1")
        XCTAssertGreaterThan(manifest.stats.newBlocks, 0)
        let restored = try await restore(volume: "rich", id: "backup-rich1", label: "restored")

        let expected = try TreeFixture.describe(source)
        let actual = try TreeFixture.describe(restored)
        XCTAssertEqual(Set(actual.keys), Set(expected.keys))
        for (path, facts) in expected {
            XCTAssertEqual(actual[path], facts, "entry '\(path)'")
        }
        // Hard links are links again, not copies.
        XCTAssertEqual(TreeFixture.inode(restored + "/dir/hard-a"), TreeFixture.inode(restored + "/hard-b"))
        // The sparse file stays sparse: 2 MiB of data in 64 MiB.
        XCTAssertLessThan(TreeFixture.allocatedBytes(restored + "/sparse.img"), 8 << 20)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: restored + "/empty"), [])
    }

    func incrementalAfterOnePercentChange() async throws {
        let source = scratch + "/data"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        let fileSize = 8 << 20
        for index in 0..<12 {
            try TreeFixture.write(source + "/file\(index)",
                                  TreeFixture.randomBytes(fileSize, seed: UInt64(100 + index)))
        }
        let total = UInt64(12 * fileSize)
        let first = try await backup(source, volume: "inc", id: "backup-inc1")
        XCTAssertEqual(first.stats.bytesRead, total)
        // Change 1 % of the data: about 1 MiB in the middle of one file.
        let fd = open(source + "/file5", O_WRONLY)
        let patch = TreeFixture.randomBytes(Int(total / 100), seed: 999)
        patch.withUnsafeBytes { _ = pwrite(fd, $0.baseAddress, $0.count, off_t(3 << 20)) }
        close(fd)
        let second = try await backup(source, volume: "inc", id: "backup-inc2", parent: first)
        XCTAssertEqual(second.stats.bytesRead, UInt64(fileSize), "only the changed file is reread")
        let ratio = Double(second.stats.newBytesStored) / Double(total)
        XCTAssertLessThan(ratio, 0.035,
                          "a 1 % change stored \(second.stats.newBytesStored) new bytes (\(ratio * 100) %)")
        XCTAssertGreaterThan(second.stats.newBytesStored, UInt64(patch.count) / 2)
        let restored = try await restore(volume: "inc", id: "backup-inc2", label: "inc-restored")
        XCTAssertEqual(try TreeFixture.describe(restored), try TreeFixture.describe(source))
    }

    func verifyReportsDamageAndRestoreRefusesIt() async throws {
        let source = scratch + "/victim"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        for index in 0..<4 {
            try TreeFixture.write(source + "/f\(index)", TreeFixture.randomBytes(600 << 10, seed: UInt64(500 + index)))
        }
        let manifest = try await backup(source, volume: "victim", id: "backup-victim")
        let clean = try await BackupVerifier(repository: repository).verify(manifest)
        XCTAssertEqual(clean, [])
        let hashes = manifest.entries.compactMap { $0.chunks?.first?.hash }
        XCTAssertGreaterThanOrEqual(hashes.count, 2)
        try await damageBlock(hashes[0], remove: false)
        try await damageBlock(hashes[1], remove: true)

        let problems = try await BackupVerifier(repository: repository).verify(manifest)
        XCTAssertEqual(problems.count, 2, "\(problems)")
        XCTAssertEqual(problems.first { $0.block == hashes[0] }?.kind, .corrupt)
        XCTAssertEqual(problems.first { $0.block == hashes[1] }?.kind, .missing)
        XCTAssertTrue(problems.allSatisfy { $0.detail.contains($0.block) })

        do {
            _ = try await restore(volume: "victim", id: "backup-victim", label: "victim-restored")
            XCTFail("restore of a damaged backup succeeded")
        } catch {
            let message = "\(error)"
            XCTAssertTrue(message.contains(hashes[0]) || message.contains(hashes[1]), message)
        }
    }

    func deleteAndCollectKeepsOtherBackupsWhole() async throws {
        let shared = TreeFixture.randomBytes(2 << 20, seed: 7)
        let a = scratch + "/a", b = scratch + "/b"
        for dir in [a, b] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        try TreeFixture.write(a + "/shared", shared)
        try TreeFixture.write(b + "/shared", shared)
        try TreeFixture.write(a + "/only-a", TreeFixture.randomBytes(1 << 20, seed: 8))
        try TreeFixture.write(b + "/only-b", TreeFixture.randomBytes(1 << 20, seed: 9))
        let backupA = try await backup(a, volume: "vol1", id: "backup-a")
        let backupB = try await backup(b, volume: "vol10", id: "backup-b")
        let value1 = try await repository.backups(volume: "vol1").map(\.id)
        XCTAssertEqual(value1, ["backup-a"])
        let value2 = try await repository.backups(volume: "vol10").map(\.id)
        XCTAssertEqual(value2, ["backup-b"])

        let before = try await repository.blockHashes()
        try await repository.deleteManifest(volume: "vol1", backup: "backup-a")
        let result = try await GarbageCollector(repository: repository).collect()
        XCTAssertNil(result.deferredBecause)
        let after = try await repository.blockHashes()
        let onlyA = backupA.blockHashes.subtracting(backupB.blockHashes)
        XCTAssertEqual(result.blocksDeleted, onlyA.count)
        XCTAssertEqual(after, before.subtracting(onlyA))
        let value3 = try await BackupVerifier(repository: repository).verify(backupB)
        XCTAssertEqual(value3, [])
        let restored = try await restore(volume: "vol10", id: "backup-b", label: "b-restored")
        XCTAssertEqual(try TreeFixture.describe(restored)["shared"]?.content,
                       try TreeFixture.describe(b)["shared"]?.content)
        let value4 = try await repository.backups(volume: "vol1").count
        XCTAssertEqual(value4, 0)
    }

    func collectionDefersWhileABackupHoldsALease() async throws {
        let source = scratch + "/lease"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try TreeFixture.write(source + "/f", TreeFixture.randomBytes(1 << 20, seed: 11))
        _ = try await backup(source, volume: "leased", id: "backup-l1")
        try await repository.deleteManifest(volume: "leased", backup: "backup-l1")
        // A backup in flight elsewhere: its lease is live, its blocks may not yet be in any manifest.
        let running = try await StoreLease.write(.backup, in: repository)
        let deferred = try await GarbageCollector(repository: repository).collect()
        XCTAssertNotNil(deferred.deferredBecause)
        XCTAssertEqual(deferred.blocksDeleted, 0)
        let value5 = try await repository.blockHashes().isEmpty
        XCTAssertFalse(value5)
        await running.release()
        let collected = try await GarbageCollector(repository: repository).collect()
        XCTAssertNil(collected.deferredBecause)
        let value6 = try await repository.blockHashes().isEmpty
        XCTAssertTrue(value6)
    }

    func concurrentBackupAndDeleteLoseNothing() async throws {
        let old = scratch + "/old", new = scratch + "/new"
        for dir in [old, new] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        let common = TreeFixture.randomBytes(3 << 20, seed: 21)
        try TreeFixture.write(old + "/common", common)
        try TreeFixture.write(new + "/common", common)
        for index in 0..<6 {
            try TreeFixture.write(new + "/n\(index)", TreeFixture.randomBytes(1 << 20, seed: UInt64(30 + index)))
        }
        _ = try await backup(old, volume: "old", id: "backup-old")
        let repository = self.repository
        // Delete the old backup (its blocks are shared with the new one) while the new backup runs.
        async let newBackup = FileBackupWriter(repository: repository).backup(.init(
            source: new, volume: "new", backupID: "backup-new", snapshot: nil, parent: nil, volumeSize: 0))
        try await repository.deleteManifest(volume: "old", backup: "backup-old")
        var collections = 0
        for _ in 0..<20 {
            _ = try await GarbageCollector(repository: repository).collect()
            collections += 1
        }
        let manifest = try await newBackup.manifest
        _ = try await GarbageCollector(repository: repository).collect()
        let value7 = try await BackupVerifier(repository: repository).verify(manifest)
        XCTAssertEqual(value7, [], "after \(collections) collections")
        let restored = try await restore(volume: "new", id: "backup-new", label: "new-restored")
        XCTAssertEqual(try TreeFixture.describe(restored), try TreeFixture.describe(new))
    }

    func copyUploadsOnlyMissingBlocks(to destination: any ObjectStore) async throws {
        let source = scratch + "/copy"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        for index in 0..<3 {
            try TreeFixture.write(source + "/c\(index)", TreeFixture.randomBytes(1 << 20, seed: UInt64(40 + index)))
        }
        let first = try await backup(source, volume: "copied", id: "snapshot-1")
        let target = BackupRepository(store: destination)
        let copied = try await BackupCopier(source: repository, destination: target).copy(first, as: "backup-c1")
        XCTAssertEqual(copied.stats.newBlocks, first.blockHashes.count)
        try TreeFixture.write(source + "/c3", TreeFixture.randomBytes(1 << 20, seed: 43))
        let second = try await backup(source, volume: "copied", id: "snapshot-2", parent: first)
        let copiedAgain = try await BackupCopier(source: repository, destination: target).copy(second, as: "backup-c2")
        XCTAssertEqual(copiedAgain.stats.newBlocks, second.blockHashes.subtracting(first.blockHashes).count)
        let value8 = try await BackupVerifier(repository: target).verify(copiedAgain)
        XCTAssertEqual(value8, [])
    }

    /// A block damaged in the source store (checked against the manifest's checksum on the way) stops the copy,
    /// which names it and writes no manifest: a destination never holds a backup it cannot restore.
    func copyRefusesADamagedBlock(to destination: any ObjectStore) async throws {
        let source = scratch + "/copy-damaged"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try TreeFixture.write(source + "/d", TreeFixture.randomBytes(2 << 20, seed: 60))
        let snapshot = try await backup(source, volume: "damaged", id: "snapshot-d")
        let victim = try XCTUnwrap(snapshot.blockHashes.sorted().first)
        try await damageBlock(victim, remove: false)
        let target = BackupRepository(store: destination)
        do {
            _ = try await BackupCopier(source: repository, destination: target).copy(snapshot, as: "backup-d")
            XCTFail("a damaged block was copied")
        } catch {
            XCTAssertTrue("\(error)".contains(victim), "\(error)")
        }
        let written = try await target.backups(volume: "damaged")
        XCTAssertTrue(written.isEmpty, "\(written)")
    }
}
