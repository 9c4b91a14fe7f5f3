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
        try await restoreAndCompare(manifest, from: BackupRepository(store: counting, cipher: cipher),
                                    into: scratch + "/many-restored", source: source)
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

    /// A restore holds no more fetched blocks than its allowance, plus one block per file it writes at once (so
    /// each file makes progress), gives all of it back, and restores every byte. Without the allowance its 3 files
    /// would hold 8 blocks each.
    func restoreHoldsNoMoreBlocksThanItsAllowance() async throws {
        let source = scratch + "/large"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        for index in 0..<3 {
            try TreeFixture.write(source + "/f\(index)", TreeFixture.randomBytes(16 << 20, seed: 90 + UInt64(index)))
        }
        let manifest = try await backup(source, volume: "large", id: "backup-large1")
        let largest = manifest.entries.compactMap(\.chunks).joined().map { Int($0.length) }.max() ?? 0
        XCTAssertGreaterThan(manifest.entries.compactMap(\.chunks).joined().count, 24, "several blocks a file")

        let allowance = ByteAllowance(limit: 2 << 20)
        let target = scratch + "/large-restored"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try await FileRestorer(repository: repository, allowance: allowance).restore(manifest, into: target)
        for index in 0..<3 {
            XCTAssertEqual(FileManager.default.contents(atPath: target + "/f\(index)"),
                           FileManager.default.contents(atPath: source + "/f\(index)"), "f\(index)")
        }
        XCTAssertEqual(allowance.taken, 0, "every block's bytes given back")
        XCTAssertGreaterThan(allowance.peak, 0)
        XCTAssertLessThanOrEqual(allowance.peak, allowance.limit + 3 * largest)
    }

    /// Pack indexes kept on the host (`PackIndexCache`): the writer keeps those it wrote; another host fetches
    /// them once and a second restore asks the store for none, and gets the same bytes; the copy of a pack that
    /// is gone is dropped at the next load.
    func packIndexesAreKeptOnTheHost() async throws {
        let source = scratch + "/indexed"
        try writeSmallFiles(source, count: 300, seed: 8_000)
        let writers = PackIndexCache(directory: scratch + "/writer-index-cache")
        let manifest = try await FileBackupWriter(repository: BackupRepository(store: store, packIndexCache: writers))
            .backup(.init(source: source, volume: "indexed", backupID: "backup-indexed1", snapshot: nil, parent: nil,
                          volumeSize: 0)).manifest
        let packs = try await packIDs()
        XCTAssertGreaterThanOrEqual(packs.count, 2)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: writers.directory)), Set(packs))
        let writersView = ReadCountingStore(base: store)
        _ = try await BackupRepository(store: writersView, packIndexCache: writers).blockHashes()
        XCTAssertEqual(writersView.count("get packs"), 0, "the writer fetched indexes it had kept")

        let cache = PackIndexCache(directory: scratch + "/index-cache")
        let counting = ReadCountingStore(base: store)
        for round in 1...2 {
            try await restoreAndCompare(manifest, from: BackupRepository(store: counting, packIndexCache: cache),
                                        into: scratch + "/indexed-\(round)", source: source)
            XCTAssertEqual(counting.count("get packs"), packs.count, "after restore \(round): indexes fetched once")
        }
        let kept = try FileManager.default.contentsOfDirectory(atPath: cache.directory)
        XCTAssertEqual(Set(kept), Set(packs))
        let gone = try XCTUnwrap(packs.first)
        try await damage(BackupRepository.packKey(gone), true)
        try await damage(BackupRepository.packIndexKey(gone), true)
        _ = try await BackupRepository(store: counting, packIndexCache: cache).blockHashes()
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: cache.directory)),
                       Set(packs).subtracting([gone]))
    }

    /// Restores `manifest` through `repository` into a new directory `target` and checks every file's bytes
    /// against `source`.
    private func restoreAndCompare(_ manifest: Manifest, from repository: BackupRepository, into target: String,
                                   source: String) async throws {
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try await FileRestorer(repository: repository).restore(manifest, into: target)
        for entry in manifest.entries where entry.type == .file {
            let path = entry.path.description
            XCTAssertEqual(FileManager.default.contents(atPath: target + "/" + path),
                           FileManager.default.contents(atPath: source + "/" + path), "\(target): \(path)")
        }
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
