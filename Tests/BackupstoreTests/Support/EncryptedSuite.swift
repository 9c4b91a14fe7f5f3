@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Crypto
import Foundation
import XCTest

/// What an encrypted store must show on every backend: nothing readable in any object, the right key and only it
/// opens the store, keys change without rewriting data, copies between plain and encrypted stores.
struct EncryptedSuite {
    static let passphrase = Array("correct horse battery staple".utf8)
    let store: any ObjectStore
    let scratch: String
    /// A second, empty store of the same kind (copies).
    let other: any ObjectStore

    static func make(store: any ObjectStore, scratch: String,
                     damage: @escaping (String, Bool) async throws -> Void) async throws -> BackupSuite {
        let repository = try await BackupRepository.createEncrypted(in: store, passphrase: passphrase, hostID: "h1")
        return BackupSuite(store: store, scratch: scratch, cipher: repository.cipher, damage: damage)
    }

    /// Every object's key and bytes, read beneath any encryption.
    func objects(_ store: any ObjectStore) async throws -> [(key: String, bytes: [UInt8])] {
        var result: [(String, [UInt8])] = []
        for object in try await store.list(prefix: "") { result.append((object.key, try await store.get(object.key))) }
        return result
    }

    /// A tree whose names and contents carry markers: small files (packed), a large compressible one (its own
    /// block objects), names in directories.
    func markedTree(_ root: String) throws -> (nameMarker: String, contentMarker: String, plainIDs: [String]) {
        let nameMarker = "NAMEMARKERq7z", contentMarker = "CONTENTMARKERx9w"
        try FileManager.default.createDirectory(atPath: root + "/dir-\(nameMarker)", withIntermediateDirectories: true)
        var plainIDs: [String] = []
        for index in 0..<20 {
            let bytes = Array("\(contentMarker) small file \(index)\n".utf8)
            try TreeFixture.write(root + "/dir-\(nameMarker)/\(nameMarker)-\(index).txt", bytes)
            plainIDs.append(BlockCodec.hash(bytes))
        }
        let line = Array("\(contentMarker) a line of a large log file that compresses well\n".utf8)
        try TreeFixture.write(root + "/large-\(nameMarker).log", Array((0..<60_000).map { _ in line }.joined()))
        return (nameMarker, contentMarker, plainIDs)
    }

    func noPlaintextInAnyObject(_ suite: BackupSuite) async throws {
        let source = scratch + "/marked"
        let (nameMarker, contentMarker, plainIDs) = try markedTree(source)
        _ = try await suite.backup(source, volume: "marked", id: "backup-m1")
        let restored = try await suite.restore(volume: "marked", id: "backup-m1", label: "marked-restored")
        XCTAssertEqual(try TreeFixture.describe(restored), try TreeFixture.describe(source))
        let all = try await objects(store)
        XCTAssertGreaterThan(all.count, 4)
        for (key, bytes) in all {
            for marker in [nameMarker, contentMarker] {
                XCTAssertNil(bytes.firstRange(of: Array(marker.utf8)), "\(key) holds \(marker) in the clear")
                XCTAssertFalse(key.contains(marker), key)
            }
            // A block's plain SHA-256 (what anyone holding the file could compute) names nothing.
            for id in plainIDs { XCTAssertFalse(key.contains(id), "\(key) is named by a plain hash") }
        }
        // Only the format file and the keys are JSON anyone can read.
        // Parsed, not judged by a first "{": a sealed object starts with a random nonce, "{" once in 256.
        let readable = all.filter { (try? JSONSerialization.jsonObject(with: Data($0.bytes))) != nil }
            .map(\.key).sorted()
        XCTAssertEqual(readable.filter { !$0.contains("/keys/") }, ["convoy-backupstore/format.json"], "\(readable)")
    }

    func onlyTheRightKeyOpensTheStore(_ suite: BackupSuite) async throws {
        let source = scratch + "/keyed"
        _ = try markedTree(source)
        _ = try await suite.backup(source, volume: "keyed", id: "backup-k1")
        try await expectFailure("a wrong passphrase opened the store") {
            _ = try await BackupRepository.unlock(store, passphrase: Array("not the passphrase".utf8), hostID: nil)
        } check: { error in
            XCTAssertEqual(error.kind, .invalidArgument)
            XCTAssertTrue(error.message.contains("opens none of the 1 key(s)"), error.message)
        }
        // Without a key: a clear refusal, never a manifest misread.
        let plain = BackupRepository(store: store)
        try await expectFailure("a plain repository wrote to an encrypted store") {
            try await plain.prepare()
        } check: { error in
            XCTAssertTrue(error.message.contains("encrypted store") && error.message.contains("--password-file"),
                          error.message)
        }
        try await expectFailure("a manifest was read without the key") {
            _ = try await plain.manifest(volume: "keyed", backup: "backup-k1")
        } check: { error in
            XCTAssertEqual(error.kind, .driverFailure)
        }
        // A key file someone crafted to make readers spend 64 GiB on scrypt is passed over, not tried.
        let crafted = #"{"id":"crafted","createdAt":0,"kdf":"scrypt","logN":20,"r":32,"p":16,"#
            + #""salt":"AAAAAAAAAAAAAAAAAAAAAA==","sealedMasterKey":"AAAA"}"#
        try await store.put(StoreKeys.key("crafted"), Array(crafted.utf8))
        try await expectFailure("a crafted key opened the store") {
            _ = try await BackupRepository.unlock(store, passphrase: Array("not the passphrase".utf8), hostID: nil)
        } check: { error in
            XCTAssertTrue(error.message.contains("opens none of the 2 key(s)"), error.message)
        }
        _ = try await BackupRepository.unlock(store, passphrase: Self.passphrase, hostID: nil)
        try await store.delete([StoreKeys.key("crafted")])
        // It is the bound that passes it over, before scrypt allocates anything.
        try await expectFailure("scrypt was asked for 64 GiB") {
            _ = try StoreKeys.derive(Self.passphrase, salt: [UInt8](repeating: 0, count: 16), logN: 20, r: 32, p: 16)
        } check: { error in
            XCTAssertTrue(error.message.contains("out of bounds"), error.message)
        }
        // Another store's key does not open this one's objects either.
        let stranger = BackupRepository(store: store, cipher: StoreCipher.generate())
        try await expectFailure("another key opened the manifest") {
            _ = try await stranger.manifest(volume: "keyed", backup: "backup-k1")
        } check: { error in
            XCTAssertTrue(error.message.contains("does not open with this store's key"), error.message)
        }
        // An object moved under another name does not open: its name is authenticated with it.
        let base = store
        let moved = try await base.get(BackupRepository.manifestKey(volume: "keyed", backup: "backup-k1"))
        try await base.put(BackupRepository.manifestKey(volume: "keyed", backup: "backup-k2"), moved)
        try await expectFailure("a manifest moved to another name was read") {
            _ = try await suite.repository.manifest(volume: "keyed", backup: "backup-k2")
        } check: { error in
            XCTAssertTrue(error.message.contains("under another name"), error.message)
        }
    }

    /// Runs `body`, which must fail with a ConvoyError that `check` accepts.
    func expectFailure(_ message: String, _ body: () async throws -> Void,
                       check: (ConvoyError) -> Void) async throws {
        do {
            try await body()
            XCTFail(message)
        } catch let error as ConvoyError {
            check(error)
        }
    }

    /// Every object but the keys, by key.
    func dataObjects() async throws -> [String: [UInt8]] {
        var result: [String: [UInt8]] = [:]
        for (key, bytes) in try await objects(store) where !key.contains("/keys/") { result[key] = bytes }
        return result
    }

    func keysChangeWithoutRewritingData(_ suite: BackupSuite) async throws {
        let source = scratch + "/rekey"
        _ = try markedTree(source)
        _ = try await suite.backup(source, volume: "rekey", id: "backup-r1")
        let before = try await dataObjects()
        let old = try await BackupRepository.unlock(store, passphrase: Self.passphrase, hostID: nil)
        let newPassphrase = Array("a new passphrase, longer".utf8)
        let added = try await old.addKey(passphrase: newPassphrase)
        let keys = try await old.keys()
        XCTAssertEqual(keys.count, 2)
        let others = keys.map(\.id).filter { $0 != added.id }
        XCTAssertEqual(others.count, 1)
        let oldID = others.first ?? ""
        try await old.removeKey(oldID)
        let after = try await dataObjects()
        XCTAssertEqual(before, after, "changing keys rewrote data")
        try await expectFailure("a removed key still opens the store") {
            _ = try await BackupRepository.unlock(store, passphrase: Self.passphrase, hostID: nil)
        } check: { error in
            XCTAssertEqual(error.kind, .invalidArgument)
        }
        let reopened = try await BackupRepository.unlock(store, passphrase: newPassphrase, hostID: nil)
        let manifest = try await reopened.manifest(volume: "rekey", backup: "backup-r1")
        let target = scratch + "/rekey-restored"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try await FileRestorer(repository: reopened).restore(manifest, into: target)
        XCTAssertEqual(try TreeFixture.describe(target), try TreeFixture.describe(source))
        try await expectFailure("the last key was removed") {
            try await reopened.removeKey(added.id)
        } check: { error in
            XCTAssertTrue(error.message.contains("last key"), error.message)
        }
    }

    /// A plain store's backup copied into the encrypted one (how every file-volume backup arrives: from the local
    /// snapshot store), incrementally, and back out into another plain store.
    func copiesBetweenPlainAndEncryptedStores(_ suite: BackupSuite) async throws {
        let source = scratch + "/copied"
        _ = try markedTree(source)
        let local = BackupRepository(store: try FileObjectStore(root: scratch + "/local-store"))
        let first = try await FileBackupWriter(repository: local).backup(.init(
            source: source, volume: "copied", backupID: "snapshot-1", snapshot: nil, parent: nil, volumeSize: 0))
            .manifest
        let encrypted = suite.repository
        let copied = try await BackupCopier(source: local, destination: encrypted).copy(first, as: "backup-c1")
        XCTAssertEqual(copied.stats.newBlocks, first.blockHashes.count)
        XCTAssertTrue(copied.blockHashes.isDisjoint(with: first.blockHashes), "ids are keyed in the encrypted store")
        try TreeFixture.write(source + "/added.bin", TreeFixture.randomBytes(1 << 20, seed: 5))
        let second = try await FileBackupWriter(repository: local).backup(.init(
            source: source, volume: "copied", backupID: "snapshot-2", snapshot: nil, parent: first, volumeSize: 0))
            .manifest
        let copiedAgain = try await BackupCopier(source: local, destination: encrypted).copy(second, as: "backup-c2")
        XCTAssertEqual(copiedAgain.stats.newBlocks, second.blockHashes.subtracting(first.blockHashes).count)
        let problems = try await BackupVerifier(repository: encrypted).verify(copiedAgain)
        XCTAssertEqual(problems, [])
        // Out again, into a plain store: plain ids, the same bytes.
        let plain = BackupRepository(store: other)
        let out = try await BackupCopier(source: encrypted, destination: plain).copy(copiedAgain, as: "backup-out")
        XCTAssertEqual(out.blockHashes, second.blockHashes)
        let target = scratch + "/copied-out"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try await FileRestorer(repository: plain).restore(try await plain.manifest(volume: "copied",
                                                                                   backup: "backup-out"),
                                                          into: target)
        XCTAssertEqual(try TreeFixture.describe(target), try TreeFixture.describe(source))
    }
}

extension EncryptedSuite {
    /// A block device's backup (a file stands in for the thin snapshot), incremental, restored byte for byte.
    func blockBackupsRoundTrip(_ suite: BackupSuite) async throws {
        let device = scratch + "/device.img", blockSize: UInt64 = 64 << 10
        var image = TreeFixture.randomBytes(4 << 20, seed: 77)
        let marker = Array("BLOCKMARKERz2q".utf8)
        image.replaceSubrange(1000..<(1000 + marker.count), with: marker)
        try TreeFixture.write(device, image)
        let writer = BlockBackupWriter(repository: suite.repository)
        let all = (0..<UInt64(image.count) / blockSize).map { $0 }
        let first = try await writer.backup(.init(device: device, volume: "blk", backupID: "backup-b1", snapshot: "s1",
                                                  volumeSize: UInt64(image.count), blockSize: blockSize, read: all,
                                                  kept: [], parent: nil))
        XCTAssertEqual(first.stats.newBlocks, all.count)
        // Two blocks change: only they are read and stored.
        image.replaceSubrange(Int(5 * blockSize)..<Int(7 * blockSize),
                              with: TreeFixture.randomBytes(Int(2 * blockSize), seed: 78))
        try TreeFixture.write(device, image)
        let imageChunks = first.entries.first { $0.path == Manifest.imagePath }?.chunks ?? []
        let kept = imageChunks.filter { $0.offset / blockSize != 5 && $0.offset / blockSize != 6 }
        let second = try await writer.backup(.init(device: device, volume: "blk", backupID: "backup-b2",
                                                   snapshot: "s2", volumeSize: UInt64(image.count),
                                                   blockSize: blockSize, read: [5, 6], kept: kept,
                                                   parent: "backup-b1"))
        XCTAssertEqual(second.stats.newBlocks, 2)
        let restored = scratch + "/restored.img"
        try TreeFixture.write(restored, [UInt8](repeating: 0, count: image.count))
        let manifest = try await suite.repository.manifest(volume: "blk", backup: "backup-b2")
        XCTAssertEqual(manifest.entries.first { $0.path == Manifest.imagePath }?.chunks?.count, all.count)
        try await BlockRestorer(repository: suite.repository).restore(manifest, onto: restored)
        let back = try Array(Data(contentsOf: URL(fileURLWithPath: restored)))
        XCTAssertEqual(back.count, image.count)
        let firstDifference = zip(back, image).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        XCTAssertNil(firstDifference, "the restored image differs from byte \(firstDifference ?? -1) on")
        for (key, bytes) in try await objects(store) {
            XCTAssertNil(bytes.firstRange(of: marker), "\(key) holds the device's marker in the clear")
        }
    }
}
