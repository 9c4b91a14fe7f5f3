@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest

/// The tree is scanned while the backup reads: the manifest is the same as with a scan done first, and a backup
/// cancelled before its scan finished writes no manifest of part of the tree.
final class ScanOverlapTests: XCTestCase {
    private func tree(files: Int) throws -> String {
        let source = try TreeFixture.temporaryDirectory("overlap-source")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: source) }
        // A large file early in the walk (its batch ends at once), then many small ones in several directories.
        try TreeFixture.write(source + "/a-large",
                              TreeFixture.randomBytes(Int(SourceFile.directThreshold) + 12345, seed: 9))
        for index in 0..<files {
            let directory = source + "/d\(index % 7)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try TreeFixture.write(directory + "/f\(index)",
                                  TreeFixture.randomBytes(100 + index, seed: UInt64(index + 1)))
        }
        return source
    }

    func testManifestListsTheWholeTreeInScanOrder() async throws {
        let source = try tree(files: 700)
        let storeRoot = try TreeFixture.temporaryDirectory("overlap-store")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: storeRoot) }
        let repository = BackupRepository(store: try FileObjectStore(root: storeRoot))
        let manifest = try await FileBackupWriter(repository: repository).backup(.init(
            source: source, volume: "overlap", backupID: "backup-overlap1", snapshot: nil, parent: nil, volumeSize: 0)
        ).manifest
        let scanned = try TreeScanner(root: source).scan().entries
        XCTAssertEqual(manifest.entries.map(\.path), scanned.map(\.path))
        XCTAssertEqual(manifest.stats.files, 701)
        XCTAssertEqual(manifest.stats.directories, 8)
        XCTAssertEqual(manifest.stats.bytes, scanned.reduce(0) { $0 + $1.size })
        for entry in manifest.entries where entry.type == .file {
            XCTAssertEqual(entry.chunks?.reduce(0) { $0 + UInt64($1.length) }, entry.size, entry.path.description)
        }
    }

    func testCancelledBeforeTheScanFinishedWritesNoManifest() async throws {
        let source = try tree(files: 3000)
        let storeRoot = try TreeFixture.temporaryDirectory("overlap-store")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: storeRoot) }
        let repository = BackupRepository(store: try FileObjectStore(root: storeRoot))
        let backup = Task {
            try await FileBackupWriter(repository: repository).backup(.init(
                source: source, volume: "overlap", backupID: "backup-cancel1", snapshot: nil, parent: nil,
                volumeSize: 0))
        }
        backup.cancel()
        do {
            let outcome = try await backup.value
            XCTFail("a cancelled backup wrote a manifest of \(outcome.manifest.entries.count) entries")
        } catch {}
        do throws(ConvoyError) {
            _ = try await repository.manifest(volume: "overlap", backup: "backup-cancel1")
            XCTFail("the cancelled backup's manifest exists")
        } catch {
            XCTAssertEqual(error.kind, .notFound, error.message)
        }
    }
}
