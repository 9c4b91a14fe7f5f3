@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest

/// Small blocks live in packs: what a user checks is that the data comes back, damage is found and named, and a
/// collection keeps what other backups use.
extension BackupSuite {
    /// Writes `count` small random files (4–60 KiB) under `directory`, seeded by `seed`.
    func writeSmallFiles(_ directory: String, count: Int, seed: UInt64) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for index in 0..<count {
            let size = (4 + (index * 7) % 57) << 10
            try TreeFixture.write(directory + "/small-\(index)",
                                  TreeFixture.randomBytes(size, seed: seed + UInt64(index)))
        }
    }

    /// Objects under `prefix` of the store, by key.
    func keys(under prefix: String) async throws -> [String] {
        try await store.list(prefix: prefix).map(\.key)
    }

    /// Damages block `hash` where the store keeps it, behind the repository's back: its own object (as `damage`
    /// does), or its bytes in a pack (a byte flipped in its middle; `remove`: its entry taken out of the pack's
    /// index, so the store no longer has it).
    func damageBlock(_ hash: String, remove: Bool) async throws {
        let reading = repository
        guard let place = try await reading.packs.locate(hash, in: reading.store) else {
            return try await damage(BackupRepository.blockKey(hash), remove)
        }
        if remove {
            let indexKey = BackupRepository.packIndexKey(place.pack)
            let entries = try PackIndexCodec.decode(try await reading.store.get(indexKey), pack: place.pack)
            try await reading.store.put(indexKey, PackIndexCodec.encode(entries.filter { $0.hash != hash }))
        } else {
            let key = BackupRepository.packKey(place.pack)
            var bytes = try await store.get(key)
            bytes[place.offset + place.length / 2] ^= 0xff
            try await store.put(key, bytes)
        }
    }

    func packIDs() async throws -> [String] {
        try await keys(under: BackupRepository.packsPrefix).filter { !$0.hasSuffix(BackupRepository.packIndexSuffix) }
            .map { String($0.split(separator: "/").last ?? "") }
    }

    /// The entries of every pack, read back from the index objects.
    func packEntries() async throws -> [String: [PackEntry]] {
        var result: [String: [PackEntry]] = [:]
        for id in try await packIDs() {
            let index = try await repository.store.get(BackupRepository.packIndexKey(id))
            result[id] = try PackIndexCodec.decode(index, pack: id)
        }
        return result
    }

    func smallBlocksArePackedAndRoundTrip() async throws {
        let source = scratch + "/small"
        try writeSmallFiles(source, count: 300, seed: 1_000)
        try TreeFixture.write(source + "/large", TreeFixture.randomBytes(3 << 20, seed: 77))
        let manifest = try await backup(source, volume: "small", id: "backup-small1")

        let smallHashes = Set(manifest.entries.filter { $0.path.hasPrefix("small-") }.flatMap { $0.chunks ?? [] }
            .map(\.hash))
        XCTAssertEqual(smallHashes.count, 300)
        let loose = Set(try await keys(under: BackupRepository.blocksPrefix)
            .map { String($0.split(separator: "/").last ?? "") })
        XCTAssertTrue(loose.isDisjoint(with: smallHashes), "small blocks were stored as objects of their own")
        let largeHashes = manifest.blockHashes.subtracting(smallHashes)
        let packs = try await packEntries()
        XCTAssertGreaterThanOrEqual(packs.count, 1)
        XCTAssertLessThan(packs.count, 10, "300 blocks of about 32 KiB fill one or two 8 MiB packs")
        if store.packsLargeBlocks {
            // S3: a request per 1 MiB block would cost more than its bytes.
            XCTAssertTrue(loose.isEmpty, "a store that packs large blocks holds \(loose.count) loose block(s)")
            XCTAssertEqual(Set(packs.values.flatMap { $0 }.map(\.hash)), manifest.blockHashes)
        } else {
            // The large file's chunks (256 KiB on average, random) are packed when they are stored in at most
            // `packedBlockLimit` bytes, objects of their own when larger.
            let packed = packs.values.flatMap { $0 }
            XCTAssertTrue(smallHashes.isSubset(of: Set(packed.map(\.hash))))
            XCTAssertEqual(loose.union(packed.map(\.hash)), manifest.blockHashes)
            XCTAssertTrue(loose.isDisjoint(with: packed.map(\.hash)))
            XCTAssertTrue(packed.allSatisfy { $0.length <= BlockWriter.packedBlockLimit })
            let looseObjects = try await repository.store.list(prefix: BackupRepository.blocksPrefix)
            XCTAssertFalse(looseObjects.isEmpty, "none of the large file's blocks is an object of its own")
            for object in looseObjects {
                let size = try await repository.store.get(object.key).count
                XCTAssertGreaterThan(size, BlockWriter.packedBlockLimit, object.key)
            }
            XCTAssertTrue(largeHashes.isSuperset(of: loose))
        }
        let stored = try await repository.blockHashes()
        XCTAssertTrue(manifest.blockHashes.isSubset(of: stored))

        let verified = try await BackupVerifier(repository: repository).verify(manifest)
        XCTAssertEqual(verified, [])
        let restored = try await restore(volume: "small", id: "backup-small1", label: "small-restored")
        XCTAssertEqual(try TreeFixture.describe(restored), try TreeFixture.describe(source))

        // A second backup of the same data stores nothing new, packed or not.
        let again = try await backup(source, volume: "small", id: "backup-small2")
        XCTAssertEqual(again.stats.newBlocks, 0)
        let value = try await packIDs().count
        XCTAssertEqual(value, packs.count)
    }

    func damagedPackedBlockIsNamedAndOnlyItsFileFails() async throws {
        let source = scratch + "/packed-victim"
        try writeSmallFiles(source, count: 40, seed: 2_000)
        let manifest = try await backup(source, volume: "pv", id: "backup-pv")
        let packs = try await packEntries()
        XCTAssertEqual(packs.count, 1)
        let (packID, entries) = try XCTUnwrap(packs.first)
        let victim = entries[entries.count / 2]
        var pack = try await store.get(BackupRepository.packKey(packID))
        pack[victim.offset + victim.length / 2] ^= 0xff
        try await store.put(BackupRepository.packKey(packID), pack)

        let problems = try await BackupVerifier(repository: repository).verify(manifest)
        XCTAssertEqual(problems.map(\.block), [victim.hash], "\(problems)")
        XCTAssertEqual(problems.first?.kind, .corrupt)
        let victimPath = manifest.entries.first { $0.chunks?.contains { $0.hash == victim.hash } == true }?.path
        XCTAssertEqual(problems.first?.path, victimPath?.description)
        do {
            _ = try await restore(volume: "pv", id: "backup-pv", label: "pv-restored")
            XCTFail("restore of a damaged backup succeeded")
        } catch {
            XCTAssertTrue("\(error)".contains(victim.hash), "\(error)")
        }

        // A pack that is gone: every block in it is reported missing, by name.
        try await store.delete([BackupRepository.packKey(packID)])
        let missing = try await BackupVerifier(repository: repository).verify(manifest)
        XCTAssertEqual(Set(missing.map(\.block)), Set(entries.map(\.hash)))
        XCTAssertTrue(missing.allSatisfy { $0.kind == .missing && $0.detail.contains($0.block) }, "\(missing)")
    }

    func collectionRewritesPacksThatHoldDeadBlocks() async throws {
        let shared = scratch + "/shared-small"
        try writeSmallFiles(shared, count: 30, seed: 3_000)
        let a = scratch + "/pa", b = scratch + "/pb"
        for (directory, seed) in [(a, UInt64(4_000)), (b, UInt64(5_000))] {
            try writeSmallFiles(directory + "/own", count: 30, seed: seed)
            try FileManager.default.copyItem(atPath: shared, toPath: directory + "/shared")
        }
        let backupA = try await backup(a, volume: "packs-a", id: "backup-pa")
        let backupB = try await backup(b, volume: "packs-b", id: "backup-pb")
        // A's pack holds A's own and the shared blocks; B's only B's own (the shared ones were there already).
        let before = try await packEntries()
        XCTAssertEqual(before.count, 2)

        // A reader that loaded the pack indexes before the collection (a mounted backup) keeps reading after it.
        let reader = repository
        let sharedHash = try XCTUnwrap(backupB.entries.first { $0.path.hasPrefix("shared/") }?.chunks?.first?.hash)
        _ = try await reader.block(sharedHash)

        try await repository.deleteManifest(volume: "packs-a", backup: "backup-pa")
        let result = try await GarbageCollector(repository: repository).collect()
        XCTAssertNil(result.deferredBecause)
        XCTAssertEqual(result.packsRewritten, 1)
        XCTAssertEqual(result.packsDeleted, 0)
        XCTAssertEqual(result.blocksDeleted, backupA.blockHashes.subtracting(backupB.blockHashes).count)
        let after = try await repository.blockHashes()
        XCTAssertEqual(after, backupB.blockHashes)
        let afterPacks = try await packEntries()
        XCTAssertEqual(afterPacks.count, 2)
        XCTAssertTrue(Set(afterPacks.keys).isDisjoint(with: Set(before.keys).subtracting(
            before.filter { $0.value.allSatisfy { backupB.blockHashes.contains($0.hash) } }.keys)))
        let verified = try await BackupVerifier(repository: repository).verify(backupB)
        XCTAssertEqual(verified, [])
        let value = try await reader.block(sharedHash)
        XCTAssertEqual(value.withUnsafeBytes { repository.blockID(of: $0) }, sharedHash)
        let restored = try await restore(volume: "packs-b", id: "backup-pb", label: "pb-restored")
        XCTAssertEqual(try TreeFixture.describe(restored), try TreeFixture.describe(b))

        try await repository.deleteManifest(volume: "packs-b", backup: "backup-pb")
        let last = try await GarbageCollector(repository: repository).collect()
        XCTAssertEqual(last.packsDeleted, 2)
        let empty = try await keys(under: BackupRepository.packsPrefix)
        XCTAssertEqual(empty, [])
        let none = try await repository.blockHashes()
        XCTAssertEqual(none, [])
    }

    func crashLeftoversOfPacksAreIgnoredThenCollected() async throws {
        let source = scratch + "/leftovers"
        try writeSmallFiles(source, count: 10, seed: 6_000)
        let manifest = try await backup(source, volume: "left", id: "backup-left")
        // What a writer that died between the pack and its index leaves, and a collection that died between
        // deleting an index and its pack (the reverse order cannot happen).
        let orphanPack = BlockWriter.newPackID(), orphanIndex = BlockWriter.newPackID()
        try await store.put(BackupRepository.packKey(orphanPack), TreeFixture.randomBytes(4096, seed: 1))
        try await store.put(BackupRepository.packIndexKey(orphanIndex),
                            PackIndexCodec.encode([PackEntry(hash: String(repeating: "ab", count: 32), offset: 0,
                                                             length: 10)]))
        // Not convoy's: a name that is no pack id is neither read nor removed.
        let stranger = BackupRepository.packsPrefix + "zz/not-a-pack.idx"
        try await store.put(stranger, Array("notes".utf8))
        let stored = try await repository.blockHashes()
        XCTAssertEqual(stored, manifest.blockHashes, "leftovers add no blocks")
        let verified = try await BackupVerifier(repository: repository).verify(manifest)
        XCTAssertEqual(verified, [])

        let result = try await GarbageCollector(repository: repository).collect()
        XCTAssertEqual(result.packsDeleted, 1)
        let left = try await keys(under: BackupRepository.packsPrefix)
        XCTAssertFalse(left.contains(BackupRepository.packKey(orphanPack)))
        XCTAssertFalse(left.contains(BackupRepository.packIndexKey(orphanIndex)))
        XCTAssertEqual(left.count, 3, "the backup's pack and its index stay, and the stranger: \(left)")
        XCTAssertTrue(left.contains(stranger))
        let restored = try await restore(volume: "left", id: "backup-left", label: "left-restored")
        XCTAssertEqual(try TreeFixture.describe(restored), try TreeFixture.describe(source))
    }

    func packWithDamagedIndexIsKeptAndNamed() async throws {
        let source = scratch + "/damaged-index"
        try writeSmallFiles(source, count: 12, seed: 7_000)
        let manifest = try await backup(source, volume: "di", id: "backup-di")
        let ids = try await packIDs()
        let packID = try XCTUnwrap(ids.first)
        var index = try await store.get(BackupRepository.packIndexKey(packID))
        index[index.count / 2] ^= 0xff
        try await store.put(BackupRepository.packIndexKey(packID), index)

        // Its blocks cannot be located: verify says so and names the index.
        let problems = try await BackupVerifier(repository: repository).verify(manifest)
        XCTAssertEqual(Set(problems.map(\.block)), manifest.blockHashes)
        XCTAssertTrue(problems.allSatisfy { $0.kind == .missing && $0.detail.contains("index of pack \(packID)") },
                      "\(problems)")
        // A collection must not take the pack away: its blocks may be referenced.
        try await repository.deleteManifest(volume: "di", backup: "backup-di")
        let result = try await GarbageCollector(repository: repository).collect()
        XCTAssertEqual(result.packsWithDamagedIndex.count, 1)
        XCTAssertTrue(result.packsWithDamagedIndex.first?.contains(packID) == true, "\(result.packsWithDamagedIndex)")
        let left = try await keys(under: BackupRepository.packsPrefix)
        XCTAssertEqual(Set(left), [BackupRepository.packKey(packID), BackupRepository.packIndexKey(packID)])
    }

    func versionOneStoreIsUpgradedWhenWritten() async throws {
        let formatKey = "convoy-backupstore/format.json"
        try await store.put(formatKey, Array(#"{"format":"convoy-backupstore","version":1}"#.utf8))
        try await repository.prepare()
        let upgraded = String(decoding: try await store.get(formatKey), as: UTF8.self)
        XCTAssertTrue(upgraded.contains(#""version":2"#), upgraded)
        // Version 3 is an encrypted store's: one that does not say how it is encrypted is not one this reads.
        try await store.put(formatKey, Array(#"{"format":"convoy-backupstore","version":3}"#.utf8))
        do {
            try await repository.prepare()
            XCTFail("a version 3 store without encryption was accepted")
        } catch {
            XCTAssertTrue("\(error)".contains("upgrade convoy"), "\(error)")
        }
        try await store.put(formatKey, Array(#"{"format":"convoy-backupstore","version":4}"#.utf8))
        do {
            try await repository.prepare()
            XCTFail("a version 4 store was accepted")
        } catch {
            XCTAssertTrue("\(error)".contains("upgrade convoy"), "\(error)")
        }
    }
}
