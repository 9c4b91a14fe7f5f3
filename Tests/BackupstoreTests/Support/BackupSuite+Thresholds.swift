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
            XCTAssertEqual(BlockCodec.hash(value), hash, "a dead block left in its pack is no longer readable")
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
