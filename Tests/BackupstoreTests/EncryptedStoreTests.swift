@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest

/// The backup suite and the encryption checks on an encrypted directory store.
final class EncryptedFileStoreTests: XCTestCase {
    var scratch = ""

    override func setUpWithError() throws {
        scratch = try TreeFixture.temporaryDirectory("enc")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: scratch)
    }

    func made() async throws -> (BackupSuite, EncryptedSuite) {
        let store = try FileObjectStore(root: scratch + "/store")
        let suite = try await EncryptedSuite.make(store: store, scratch: scratch,
                                                  damage: BackupSuite.fileDamage(store))
        return (suite, EncryptedSuite(store: store, scratch: scratch,
                                      other: try FileObjectStore(root: scratch + "/other")))
    }

    func testNoPlaintextInAnyObject() async throws {
        let (suite, checks) = try await made()
        try await checks.noPlaintextInAnyObject(suite)
    }
    func testOnlyTheRightKeyOpensTheStore() async throws {
        let (suite, checks) = try await made()
        try await checks.onlyTheRightKeyOpensTheStore(suite)
    }
    func testKeysChangeWithoutRewritingData() async throws {
        let (suite, checks) = try await made()
        try await checks.keysChangeWithoutRewritingData(suite)
    }
    func testCopiesBetweenPlainAndEncryptedStores() async throws {
        let (suite, checks) = try await made()
        try await checks.copiesBetweenPlainAndEncryptedStores(suite)
    }
    func testBlockBackupsRoundTrip() async throws {
        let (suite, checks) = try await made()
        try await checks.blockBackupsRoundTrip(suite)
    }
    func testRoundTripEveryKindOfEntry() async throws { try await made().0.roundTripEveryKindOfEntry() }
    func testIncrementalAfterOnePercentChange() async throws { try await made().0.incrementalAfterOnePercentChange() }
    func testVerifyReportsDamageAndRestoreRefusesIt() async throws {
        try await made().0.verifyReportsDamageAndRestoreRefusesIt()
    }
    func testDeleteAndCollectKeepsOtherBackupsWhole() async throws {
        try await made().0.deleteAndCollectKeepsOtherBackupsWhole()
    }
    func testSmallBlocksArePackedAndRoundTrip() async throws { try await made().0.smallBlocksArePackedAndRoundTrip() }
    func testRestoreReadsEachPackOnce() async throws { try await made().0.restoreReadsEachPackOnce() }
    func testDamagedPackedBlockIsNamedAndOnlyItsFileFails() async throws {
        try await made().0.damagedPackedBlockIsNamedAndOnlyItsFileFails()
    }
    func testCollectionRewritesPacksThatHoldDeadBlocks() async throws {
        try await made().0.collectionRewritesPacksThatHoldDeadBlocks()
    }
    func testCollectionKeepsMostlyLivePacksAndMergesSmallOnes() async throws {
        try await made().0.collectionKeepsMostlyLivePacksAndMergesSmallOnes()
    }
    func testStoreVerifyChecksEveryBackupAndReadsTheSubsetAsked() async throws {
        try await made().0.storeVerifyChecksEveryBackupAndReadsTheSubsetAsked()
    }
    func testReadsCheckTheManifestsChecksums() async throws { try await made().0.readsCheckTheManifestsChecksums() }
    func testConcurrentBackupAndDeleteLoseNothing() async throws {
        try await made().0.concurrentBackupAndDeleteLoseNothing()
    }
}

/// The same on S3 (moto).
final class EncryptedS3StoreTests: XCTestCase {
    var scratch = ""

    override func setUpWithError() throws {
        scratch = try TreeFixture.temporaryDirectory("enc-s3")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: scratch)
    }

    func made() async throws -> (BackupSuite, EncryptedSuite) {
        let made = try await S3TestStore.make()
        let suite = try await EncryptedSuite.make(store: made.store, scratch: scratch,
                                                  damage: BackupSuite.s3Damage(made.client,
                                                                               prefix: made.store.prefix))
        return (suite, EncryptedSuite(store: made.store, scratch: scratch,
                                      other: try await S3TestStore.make(prefix: "").store))
    }

    func testNoPlaintextInAnyObject() async throws {
        let (suite, checks) = try await made()
        try await checks.noPlaintextInAnyObject(suite)
    }
    func testOnlyTheRightKeyOpensTheStore() async throws {
        let (suite, checks) = try await made()
        try await checks.onlyTheRightKeyOpensTheStore(suite)
    }
    func testKeysChangeWithoutRewritingData() async throws {
        let (suite, checks) = try await made()
        try await checks.keysChangeWithoutRewritingData(suite)
    }
    func testCopiesBetweenPlainAndEncryptedStores() async throws {
        let (suite, checks) = try await made()
        try await checks.copiesBetweenPlainAndEncryptedStores(suite)
    }
    func testRoundTripEveryKindOfEntry() async throws { try await made().0.roundTripEveryKindOfEntry() }
    func testDeleteAndCollectKeepsOtherBackupsWhole() async throws {
        try await made().0.deleteAndCollectKeepsOtherBackupsWhole()
    }
    func testCollectionRewritesPacksThatHoldDeadBlocks() async throws {
        try await made().0.collectionRewritesPacksThatHoldDeadBlocks()
    }
    func testStoreVerifyChecksEveryBackupAndReadsTheSubsetAsked() async throws {
        try await made().0.storeVerifyChecksEveryBackupAndReadsTheSubsetAsked()
    }
}
