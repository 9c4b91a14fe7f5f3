@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest

/// Blocks written without a sync have their writeback started early, small ones in batches; every descriptor
/// handed over for that is closed by the end of the backup, and every block is durable and readable.
final class WritebackTests: XCTestCase {
    func testSmallFilesLeaveNoDescriptorOpenAndEveryBlockReadsBack() async throws {
        let source = try TreeFixture.temporaryDirectory("writeback-source")
        let storeRoot = try TreeFixture.temporaryDirectory("writeback-store")
        addTeardownBlock {
            try? FileManager.default.removeItem(atPath: source)
            try? FileManager.default.removeItem(atPath: storeRoot)
        }
        // More files than one batch holds, and a count that leaves a batch unfinished at the end.
        var files: [String: [UInt8]] = [:]
        for index in 0..<301 {
            let bytes = TreeFixture.randomBytes(3000 + index * 7, seed: UInt64(index + 1))
            files["f\(index)"] = bytes
            try TreeFixture.write(source + "/f\(index)", bytes)
        }
        let before = try openDescriptors()
        let repository = BackupRepository(store: try FileObjectStore(root: storeRoot))
        let manifest = try await FileBackupWriter(repository: repository).backup(.init(
            source: source, volume: "small", backupID: "backup-small1", snapshot: nil, parent: nil, volumeSize: 0)
        ).manifest
        XCTAssertEqual(manifest.stats.newBlocks, 301)

        // The pool closes the last batch's descriptors just after the backup returns.
        var after = try openDescriptors()
        for _ in 0..<50 where after > before {
            try await Task.sleep(for: .milliseconds(100))
            after = try openDescriptors()
        }
        XCTAssertLessThanOrEqual(after, before, "descriptors left open by the backup")

        let target = try TreeFixture.temporaryDirectory("writeback-restored")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: target) }
        try await FileRestorer(repository: repository).restore(manifest, into: target)
        for (name, bytes) in files {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: target + "/" + name)), Data(bytes), name)
        }
    }

    private func openDescriptors() throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
    }
}
