@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest

/// A restore reads packs a range at a time (`PackReadAhead`): what a user of a remote store pays for is requests,
/// and what they check is that every byte comes back.
extension BackupSuite {
    /// 400 small files and one block used by two files far apart: the restore asks the store for each pack once
    /// (not once per block) and gives back the tree.
    func restoreReadsEachPackOnce() async throws {
        let source = scratch + "/many"
        try writeSmallFiles(source + "/d1", count: 200, seed: 4_000)
        try writeSmallFiles(source + "/d2", count: 200, seed: 5_000)
        let shared = TreeFixture.randomBytes(40 << 10, seed: 6_000)
        try TreeFixture.write(source + "/a-first-copy", shared)
        try TreeFixture.write(source + "/z-last-copy", shared)
        let manifest = try await backup(source, volume: "many", id: "backup-many1")
        let packs = try await packIDs()
        XCTAssertGreaterThan(packs.count, 0)

        let counting = ReadCountingStore(base: store)
        let target = scratch + "/many-restored"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try await FileRestorer(repository: BackupRepository(store: counting, cipher: cipher))
            .restore(manifest, into: target)
        for entry in manifest.entries where entry.type == .file {
            let path = entry.path.description
            XCTAssertEqual(FileManager.default.contents(atPath: target + "/" + path),
                           FileManager.default.contents(atPath: source + "/" + path), path)
        }
        let packReads = counting.count("range packs")
        XCTAssertGreaterThan(packReads, 0)
        XCTAssertLessThanOrEqual(packReads, packs.count, "401 packed blocks in \(packs.count) pack(s) were read "
            + "with \(packReads) requests")
    }

    /// With a budget of no bytes (only the range in use is held) blocks still come back verified, those of a
    /// range let go before its last use too (read one by one); a pack that is gone is reported as a block's own
    /// read reports it.
    func readAheadWithoutRoomReadsBlockByBlock() async throws {
        let source = scratch + "/tight"
        try writeSmallFiles(source, count: 300, seed: 7_000)  // about 9.6 MB: two packs
        let manifest = try await backup(source, volume: "tight", id: "backup-tight1")
        var files = manifest.entries.compactMap { entry in entry.chunks.map { $0.map(\.hash) } }
        let counting = ReadCountingStore(base: store)
        let reading = BackupRepository(store: counting, cipher: cipher)
        // The file read first is read again at the very end, after its range had to make room for the next.
        let first = try await PackReadAhead(repository: reading, files: files, ahead: 4, budget: 0).readingOrder[0]
        files.append(files[first])
        let tight = try await PackReadAhead(repository: reading, files: files, ahead: 4, budget: 0)
        XCTAssertGreaterThanOrEqual(tight.rangeCount, 2)
        for file in tight.readingOrder.filter({ $0 != files.count - 1 }) + [files.count - 1] {
            for hash in files[file] {
                let read = try await tight.block(hash, checksum: nil).bytes
                let expected = try await repository.block(hash)
                XCTAssertEqual(read, expected, hash)
            }
        }
        XCTAssertEqual(counting.count("range packs"), tight.rangeCount + files[first].count,
                       "each range once, then the blocks of the range let go one by one")

        let roomy = try await PackReadAhead(repository: reading, files: files, ahead: 4, budget: 64 << 20)
        for id in try await packIDs() {
            try await damage(BackupRepository.packKey(id), true)
            try await damage(BackupRepository.packIndexKey(id), true)
        }
        let hash = try XCTUnwrap(files.first?.first)
        let failure = await Self.failure(reading: hash, from: roomy)
        XCTAssertEqual(failure?.kind, .notFound, failure?.message ?? "a block whose pack is gone was read")
        XCTAssertTrue(failure?.message.contains(hash) == true, failure?.message ?? "")
    }

    /// The error reading `hash` throws, nil when it is read.
    private static func failure(reading hash: String, from blocks: PackReadAhead) async -> ConvoyError? {
        do throws(ConvoyError) {
            _ = try await blocks.block(hash, checksum: nil)
            return nil
        } catch {
            return error
        }
    }
}
