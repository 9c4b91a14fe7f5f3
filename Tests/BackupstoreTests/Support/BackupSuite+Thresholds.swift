@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest

/// Collection thresholds: a pack with a few dead blocks stays as it is (they stay readable), small packs are
/// merged, and an exact collection frees every dead block.
extension BackupSuite {
    func collectionKeepsMostlyLivePacksAndMergesSmallOnes() async throws {
        // X: 100 files and 3 of its own; Y: the same 100 (nothing new to store). X's pack is ~3 MiB.
        let common = scratch + "/t-common"
        try writeSmallFiles(common, count: 100, seed: 8_000)
        let x = scratch + "/t-x", y = scratch + "/t-y"
        try FileManager.default.copyItem(atPath: common, toPath: x)
        try FileManager.default.copyItem(atPath: common, toPath: y)
        try writeSmallFiles(x + "/own", count: 3, seed: 8_500)
        let backupX = try await backup(x, volume: "tx", id: "backup-tx")
        let backupY = try await backup(y, volume: "ty", id: "backup-ty")
        let bigPacks = try await packIDs()
        XCTAssertEqual(bigPacks.count, 1)

        try await repository.deleteManifest(volume: "tx", backup: "backup-tx")
        let onlyX = backupX.blockHashes.subtracting(backupY.blockHashes)
        XCTAssertEqual(onlyX.count, 3)
        let kept = try await GarbageCollector(repository: repository).collect()
        XCTAssertEqual(kept.packsRewritten, 0, "a pack 3 % dead was rewritten")
        XCTAssertEqual(kept.deadBlocksKept, 3)
        XCTAssertGreaterThan(kept.deadBytesKept, 3 << 10)
        XCTAssertEqual(kept.blocksDeleted, 0)
        let unchanged = try await packIDs()
        XCTAssertEqual(unchanged, bigPacks)
        for hash in onlyX {
            let value = try await repository.block(hash)
            XCTAssertEqual(value.withUnsafeBytes { repository.blockID(of: $0) }, hash,
                           "a dead block left in its pack is no longer readable")
        }

        // Three small backups make three small packs; a collection merges them into one.
        var small: [Manifest] = []
        for index in 0..<3 {
            let directory = scratch + "/t-small-\(index)"
            try writeSmallFiles(directory, count: 3, seed: 9_000 + UInt64(index) * 10)
            small.append(try await backup(directory, volume: "ts\(index)", id: "backup-ts\(index)"))
        }
        let beforeMerge = try await packIDs()
        XCTAssertEqual(beforeMerge.count, 4)
        let merged = try await GarbageCollector(repository: repository).collect()
        XCTAssertEqual(merged.packsMerged, 3)
        XCTAssertEqual(merged.blocksDeleted, 0)
        let afterMerge = try await packIDs()
        XCTAssertEqual(afterMerge.count, 2, "\(afterMerge)")
        XCTAssertTrue(afterMerge.contains(bigPacks[0]), "the big pack was rewritten by the merge")
        for manifest in small + [backupY] {
            let problems = try await BackupVerifier(repository: repository).verify(manifest)
            XCTAssertEqual(problems, [], manifest.volume)
        }
        let restored = try await restore(volume: "ts1", id: "backup-ts1", label: "ts1-restored")
        XCTAssertEqual(try TreeFixture.describe(restored), try TreeFixture.describe(scratch + "/t-small-1"))

        // Exact: every dead block goes, whatever the pack.
        let exact = try await GarbageCollector(repository: repository, thresholds: .exact).collect()
        XCTAssertEqual(exact.packsRewritten, 1)
        XCTAssertEqual(exact.blocksDeleted, 3)
        XCTAssertEqual(exact.deadBlocksKept, 0)
        let left = try await repository.blockHashes()
        XCTAssertTrue(left.isDisjoint(with: onlyX))
        XCTAssertEqual(left, small.reduce(backupY.blockHashes) { $0.union($1.blockHashes) })
    }
}

/// A whole store checked: references, a subset of blocks read, damage named.
extension BackupSuite {
    func storeVerifyChecksEveryBackupAndReadsTheSubsetAsked() async throws {
        let a = scratch + "/sv-a", b = scratch + "/sv-b"
        try writeSmallFiles(a, count: 40, seed: 11_000)
        try writeSmallFiles(b, count: 40, seed: 12_000)
        let backupA = try await backup(a, volume: "sva", id: "backup-sva")
        let backupB = try await backup(b, volume: "svb", id: "backup-svb")
        let referenced = backupA.blockHashes.union(backupB.blockHashes)
        let verifier = StoreVerifier(repository: repository)

        let references = try await verifier.verify(.none)
        XCTAssertEqual(references.backups, 2)
        XCTAssertEqual(references.blocksReferenced, referenced.count)
        XCTAssertEqual(references.blocksRead, 0)
        XCTAssertEqual(references.problems, [])
        let everything = try await verifier.verify(.all)
        XCTAssertEqual(everything.blocksRead, referenced.count)
        XCTAssertEqual(everything.problems, [])
        var partsRead = 0
        for part in 1...3 { partsRead += try await verifier.verify(.part(part, of: 3)).blocksRead }
        XCTAssertEqual(partsRead, referenced.count, "three thirds are not the whole")
        let half = try await verifier.verify(try .parse("50%")).blocksRead
        XCTAssertTrue((1..<referenced.count).contains(half), "50% read \(half) of \(referenced.count)")

        // A corrupt byte in a pack: found by reading, not by the references alone.
        let allPacks = try await packEntries()
        let (packID, entries) = try XCTUnwrap(allPacks.first)
        let victim = try XCTUnwrap(entries.first)
        var pack = try await store.get(BackupRepository.packKey(packID))
        pack[victim.offset + victim.length / 2] ^= 0xff
        try await store.put(BackupRepository.packKey(packID), pack)
        let unread = try await verifier.verify(.none)
        XCTAssertEqual(unread.problems, [])
        let read = try await verifier.verify(.all)
        XCTAssertEqual(read.problems.map(\.block), [victim.hash])
        XCTAssertEqual(read.problems.first?.kind, .corrupt)

        // A manifest that cannot be read, and blocks no index holds any more.
        try await store.put(BackupRepository.manifestKey(volume: "sva", backup: "backup-sva"), Array("junk".utf8))
        try await store.delete([BackupRepository.packIndexKey(packID)])
        let damaged = try await verifier.verify(.none)
        XCTAssertEqual(damaged.backups, 1)
        XCTAssertTrue(damaged.problems.contains { $0.block.isEmpty && $0.path == "sva/backup-sva" }, "\(damaged)")
        let missing = Set(damaged.problems.filter { $0.kind == .missing }.map(\.block))
        XCTAssertEqual(missing, Set(entries.map(\.hash)).intersection(backupB.blockHashes))
        XCTAssertThrowsError(try StoreVerifier.Subset.parse("0%"))
        XCTAssertThrowsError(try StoreVerifier.Subset.parse("4/3"))
        XCTAssertEqual(try StoreVerifier.Subset.parse("1/10"), .part(1, of: 10))
    }
}
