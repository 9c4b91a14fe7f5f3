@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest

/// The backup suite on a directory store (`vfs://`).
final class FileStoreBackupTests: XCTestCase {
    var scratch = ""
    var suite: BackupSuite!

    override func setUpWithError() throws {
        scratch = try TreeFixture.temporaryDirectory("fs")
        let store = try FileObjectStore(root: scratch + "/store")
        suite = BackupSuite(store: store, scratch: scratch, damage: BackupSuite.fileDamage(store))
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: scratch)
    }

    func testRoundTripEveryKindOfEntry() async throws { try await suite.roundTripEveryKindOfEntry() }
    func testIncrementalAfterOnePercentChange() async throws { try await suite.incrementalAfterOnePercentChange() }
    func testVerifyReportsDamageAndRestoreRefusesIt() async throws {
        try await suite.verifyReportsDamageAndRestoreRefusesIt()
    }
    func testDeleteAndCollectKeepsOtherBackupsWhole() async throws {
        try await suite.deleteAndCollectKeepsOtherBackupsWhole()
    }
    func testCollectionDefersWhileABackupHoldsALease() async throws {
        try await suite.collectionDefersWhileABackupHoldsALease()
    }
    func testConcurrentBackupAndDeleteLoseNothing() async throws {
        try await suite.concurrentBackupAndDeleteLoseNothing()
    }
    func testSmallBlocksArePackedAndRoundTrip() async throws { try await suite.smallBlocksArePackedAndRoundTrip() }
    func testRestoreReadsEachPackOnce() async throws { try await suite.restoreReadsEachPackOnce() }
    func testPackIndexesAreKeptOnTheHost() async throws { try await suite.packIndexesAreKeptOnTheHost() }
    func testRestoreHoldsNoMoreBlocksThanItsAllowance() async throws {
        try await suite.restoreHoldsNoMoreBlocksThanItsAllowance()
    }
    func testReadAheadWithoutRoomReadsBlockByBlock() async throws {
        try await suite.readAheadWithoutRoomReadsBlockByBlock()
    }
    func testDamagedPackedBlockIsNamedAndOnlyItsFileFails() async throws {
        try await suite.damagedPackedBlockIsNamedAndOnlyItsFileFails()
    }
    func testCollectionRewritesPacksThatHoldDeadBlocks() async throws {
        try await suite.collectionRewritesPacksThatHoldDeadBlocks()
    }
    func testCrashLeftoversOfPacksAreIgnoredThenCollected() async throws {
        try await suite.crashLeftoversOfPacksAreIgnoredThenCollected()
    }
    func testStoreVerifyChecksEveryBackupAndReadsTheSubsetAsked() async throws {
        try await suite.storeVerifyChecksEveryBackupAndReadsTheSubsetAsked()
    }
    func testCollectionKeepsMostlyLivePacksAndMergesSmallOnes() async throws {
        try await suite.collectionKeepsMostlyLivePacksAndMergesSmallOnes()
    }
    func testPackWithDamagedIndexIsKeptAndNamed() async throws { try await suite.packWithDamagedIndexIsKeptAndNamed() }
    func testVersionOneStoreIsUpgradedWhenWritten() async throws {
        try await suite.versionOneStoreIsUpgradedWhenWritten()
    }
    func testReadsCheckTheManifestsChecksums() async throws { try await suite.readsCheckTheManifestsChecksums() }
    func testCopyUploadsOnlyMissingBlocks() async throws {
        try await suite.copyUploadsOnlyMissingBlocks(to: try FileObjectStore(root: scratch + "/other-store"))
    }
    func testCopyRefusesADamagedBlock() async throws {
        try await suite.copyRefusesADamagedBlock(to: try FileObjectStore(root: scratch + "/other-store"))
    }

    /// Listings leave out what a writer has not renamed into place yet: any name holding `.tmp-`.
    func testTemporaryNamesAreLeftOutOfListings() {
        for name in ["block.tmp-host-1-ab", ".tmp-", "x.tmp-", "é.tmp-é"] {
            XCTAssertTrue(FileObjectStore.isTemporary(name), name)
        }
        for name in ["", ".tmp", "block.tmp", "tmp-block", "block-tmp-", ".TMP-", "a.tm-p"] {
            XCTAssertFalse(FileObjectStore.isTemporary(name), name)
        }
    }

    func testStoreWritesAreAtomicAndKeysStayInside() async throws {
        let store = try FileObjectStore(root: scratch + "/plain")
        try await store.put("a/b/c", [1, 2, 3])
        let value1 = try await store.get("a/b/c")
        XCTAssertEqual(value1, [1, 2, 3])
        try await store.put("a/b/c", [4])
        let value2 = try await store.get("a/b/c")
        XCTAssertEqual(value2, [4])
        let value3 = try await store.list(prefix: "a/").map(\.key)
        XCTAssertEqual(value3, ["a/b/c"])
        for bad in ["../x", "a/../../x", "/abs", "a//b", ""] {
            do {
                try await store.put(bad, [0])
                XCTFail("accepted key \(bad)")
            } catch {}
        }
        do {
            _ = try await store.list(prefix: "a")
            XCTFail("accepted a bare prefix")
        } catch {}
        do {
            _ = try await store.get("nope")
            XCTFail("got a missing key")
        } catch {
            XCTAssertEqual(error.kind, .notFound)
        }
        try await store.delete(["a/b/c", "never/was"])
        let value4 = try await store.list(prefix: "").count
        XCTAssertEqual(value4, 0)
    }

    func testReadingAStoreThatDoesNotExistCreatesNothing() async throws {
        let missing = scratch + "/no/such/store"
        let repository = BackupRepository(store: try FileObjectStore(root: missing))
        let backups = try await repository.backups()
        XCTAssertTrue(backups.isEmpty)
        do {
            _ = try await repository.manifest(volume: "vol1", backup: "backup-1")
            XCTFail("found a manifest in an empty store")
        } catch {
            XCTAssertEqual(error.kind, .notFound)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch + "/no"))
    }

    func testRestoreRefusesAManifestThatWouldEscape() async throws {
        let repository = BackupRepository(store: try FileObjectStore(root: scratch + "/evil"))
        func entry(_ path: ByteString, _ type: Entry.Kind, target: ByteString? = nil) -> Entry {
            var entry = Entry(path: path, type: type, mode: 0o755, uid: 0, gid: 0, mtimeSeconds: 0,
                              mtimeNanoseconds: 0, size: 0)
            entry.target = target
            return entry
        }
        let attacks: [[Entry]] = [
            [entry("", .directory), entry("../escaped", .file)],
            [entry("", .directory), entry("link", .symlink, target: "/etc"), entry("link/passwd", .file)],
            [entry("", .directory), entry("/abs", .file)],
            [entry("", .directory), entry("x", .hardlink, target: "../../etc/passwd")],
        ]
        for (index, entries) in attacks.enumerated() {
            let target = scratch + "/evil-target-\(index)"
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
            let manifest = Manifest(id: "backup-evil", volume: "evil", kind: .files, createdAt: "", snapshot: nil,
                                    parent: nil, volumeSize: 0, entries: entries, stats: .init())
            do {
                try await FileRestorer(repository: repository).restore(manifest, into: target)
                XCTFail("restored attack \(index)")
            } catch {
                XCTAssertTrue(error.message.contains("unsafe path")
                                  || error.message.contains("not a directory it restored"), error.message)
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch + "/escaped"))
    }
}
