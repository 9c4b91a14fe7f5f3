import AWS
@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest

/// The same backup suite on S3 (moto's server, signatures checked).
final class S3StoreBackupTests: XCTestCase {
    var scratch = ""

    override func setUpWithError() throws {
        scratch = try TreeFixture.temporaryDirectory("s3")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: scratch)
    }

    func suite() async throws -> BackupSuite {
        let made = try await S3TestStore.make()
        return BackupSuite(store: made.store, scratch: scratch,
                           damage: BackupSuite.s3Damage(made.client, prefix: made.store.prefix))
    }

    func testRoundTripEveryKindOfEntry() async throws { try await suite().roundTripEveryKindOfEntry() }
    func testIncrementalAfterOnePercentChange() async throws { try await suite().incrementalAfterOnePercentChange() }
    func testVerifyReportsDamageAndRestoreRefusesIt() async throws {
        try await suite().verifyReportsDamageAndRestoreRefusesIt()
    }
    func testDeleteAndCollectKeepsOtherBackupsWhole() async throws {
        try await suite().deleteAndCollectKeepsOtherBackupsWhole()
    }
    func testCollectionDefersWhileABackupHoldsALease() async throws {
        try await suite().collectionDefersWhileABackupHoldsALease()
    }
    func testConcurrentBackupAndDeleteLoseNothing() async throws {
        try await suite().concurrentBackupAndDeleteLoseNothing()
    }
    func testSmallBlocksArePackedAndRoundTrip() async throws { try await suite().smallBlocksArePackedAndRoundTrip() }
    func testRestoreReadsEachPackOnce() async throws { try await suite().restoreReadsEachPackOnce() }
    func testPackIndexesAreKeptOnTheHost() async throws { try await suite().packIndexesAreKeptOnTheHost() }
    func testReadAheadWithoutRoomReadsBlockByBlock() async throws {
        try await suite().readAheadWithoutRoomReadsBlockByBlock()
    }
    func testDamagedPackedBlockIsNamedAndOnlyItsFileFails() async throws {
        try await suite().damagedPackedBlockIsNamedAndOnlyItsFileFails()
    }
    func testCollectionRewritesPacksThatHoldDeadBlocks() async throws {
        try await suite().collectionRewritesPacksThatHoldDeadBlocks()
    }
    func testCrashLeftoversOfPacksAreIgnoredThenCollected() async throws {
        try await suite().crashLeftoversOfPacksAreIgnoredThenCollected()
    }
    func testStoreVerifyChecksEveryBackupAndReadsTheSubsetAsked() async throws {
        try await suite().storeVerifyChecksEveryBackupAndReadsTheSubsetAsked()
    }
    func testCollectionKeepsMostlyLivePacksAndMergesSmallOnes() async throws {
        try await suite().collectionKeepsMostlyLivePacksAndMergesSmallOnes()
    }
    func testPackWithDamagedIndexIsKeptAndNamed() async throws {
        try await suite().packWithDamagedIndexIsKeptAndNamed()
    }
    func testVersionOneStoreIsUpgradedWhenWritten() async throws {
        try await suite().versionOneStoreIsUpgradedWhenWritten()
    }
    func testReadsCheckTheManifestsChecksums() async throws { try await suite().readsCheckTheManifestsChecksums() }
    func testCopyUploadsOnlyMissingBlocks() async throws {
        try await suite().copyUploadsOnlyMissingBlocks(to: try await S3TestStore.make(prefix: "").store)
    }

    func testCopyRefusesADamagedBlock() async throws {
        try await suite().copyRefusesADamagedBlock(to: try await S3TestStore.make(prefix: "").store)
    }

    func testMoreThanAThousandBackupsAreListed() async throws {
        let made = try await S3TestStore.make()
        let repository = BackupRepository(store: made.store)
        try await repository.prepare()
        // 1,100 small manifests of one volume: listing them needs more than one page.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<1100 {
                group.addTask {
                    try await repository.putManifest(Manifest(
                        id: String(format: "backup-%016x", index), volume: "many", kind: .files, createdAt: "",
                        snapshot: nil, parent: nil, volumeSize: 0, entries: [], stats: .init()))
                }
                if index % 16 == 15 { try await group.waitForAll() }
            }
        }
        let listed = try await repository.backups(volume: "many")
        XCTAssertEqual(listed.count, 1100)
    }

    /// Packs go up from their own buffer, which is then filled with the next pack: what was stored must not change.
    func testAPackBufferReusedAfterItsPutLeavesTheStoredPackAsItWas() async throws {
        let made = try await S3TestStore.make()
        let buffer = try XCTUnwrap(AlignedBuffer(capacity: 3 << 20))
        let first = TreeFixture.randomBytes((3 << 20) - 4_096, seed: 1)
        let second = TreeFixture.randomBytes(1 << 20, seed: 2)
        first.withUnsafeBytes { buffer.append($0) }
        try await made.store.putDeferred("packs/one", aligned: buffer)
        buffer.count = 0
        second.withUnsafeBytes { buffer.append($0) }
        try await made.store.putDeferred("packs/two", aligned: buffer)
        let storedFirst = try await made.store.get("packs/one")
        let storedSecond = try await made.store.get("packs/two")
        XCTAssertTrue(storedFirst == first, "the first pack changed when its buffer was reused")
        XCTAssertTrue(storedSecond == second, "the second pack is not what its buffer held")
    }

    func testAWrongSecretIsRefusedByTheServer() async throws {
        let made = try await S3TestStore.make()
        let environment = ProcessInfo.processInfo.environment
        let wrong = AWSCredentials(accessKeyID: environment["AWS_ACCESS_KEY_ID"] ?? "",
                                   secretAccessKey: "not-the-secret")
        let endpoint = URL(string: environment["CONVOY_TEST_S3_ENDPOINT"] ?? "")
        let store = try S3ObjectStore(bucket: made.bucket, region: "us-east-1", prefix: "x", endpoint: endpoint,
                                      credentials: wrong)
        do {
            try await store.put("k", [1])
            XCTFail("a wrongly signed request was accepted")
        } catch {
            XCTAssertTrue(error.message.contains("SignatureDoesNotMatch"), error.message)
            XCTAssertFalse(error.message.contains("not-the-secret"))
        }
    }
}
