@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest

extension BackupSuite {
    /// Every chunk of a new backup records its block's XXH3-128, and reads check that instead of the SHA-256:
    /// a manifest whose checksum disagrees with an intact block (whose content still matches its name) is refused
    /// by restore and reported by verify. A format 1 manifest (no checksums) is checked by SHA-256 and restores.
    func readsCheckTheManifestsChecksums() async throws {
        let source = scratch + "/sums"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        let random = TreeFixture.randomBytes(3 << 20, seed: 61)  // stored raw
        let text = [UInt8](String(repeating: "checksummed blocks, verified on every read\n",
                                  count: 60_000).utf8)  // compressed
        try TreeFixture.write(source + "/random.bin", random)
        try TreeFixture.write(source + "/text.txt", text)
        let manifest = try await backup(source, volume: "sums", id: "backup-sums1")
        for (name, content) in [("random.bin" as ByteString, random), ("text.txt", text)] {
            let chunks = try XCTUnwrap(manifest.entries.first { $0.path == name }?.chunks)
            XCTAssertFalse(chunks.isEmpty)
            for chunk in chunks {
                let bytes = Array(content[Int(chunk.offset)..<(Int(chunk.offset) + Int(chunk.length))])
                XCTAssertEqual(chunk.checksum, BlockChecksum.of(bytes), "\(name) at \(chunk.offset)")
            }
        }
        let stored = try await repository.manifest(volume: "sums", backup: "backup-sums1")
        XCTAssertEqual(stored.format, Manifest.currentFormat)
        XCTAssertEqual(stored, manifest)

        // As a format 1 manifest, without checksums: restored, checked by the blocks' names.
        var old = manifest
        old.id = "backup-sums0"
        old.format = 1
        for index in old.entries.indices { old.entries[index].chunks = old.entries[index].chunks?.map { chunk in
            Chunk(hash: chunk.hash, offset: chunk.offset, length: chunk.length)
        } }
        try await repository.putManifest(old)
        let fromOld = try await restore(volume: "sums", id: "backup-sums0", label: "sums-old")
        XCTAssertEqual(try TreeFixture.describe(fromOld), try TreeFixture.describe(source))

        // One recorded checksum off by one bit: the block itself is intact, yet restore refuses it and verify names it.
        var wrong = manifest
        wrong.id = "backup-sums2"
        let fileIndex = try XCTUnwrap(wrong.entries.firstIndex { $0.path == "text.txt" })
        let victim = try XCTUnwrap(wrong.entries[fileIndex].chunks?.first)
        let recorded = try XCTUnwrap(victim.checksum)
        wrong.entries[fileIndex].chunks?[0].checksum = BlockChecksum(high: recorded.high, low: recorded.low ^ 1)
        try await repository.putManifest(wrong)
        do {
            _ = try await restore(volume: "sums", id: "backup-sums2", label: "sums-wrong")
            XCTFail("a block whose content disagrees with the manifest's checksum was restored")
        } catch {
            let message = "\(error)"
            XCTAssertTrue(message.contains(victim.hash) && message.contains("checksum"), message)
        }
        let problems = try await BackupVerifier(repository: repository).verify(wrong)
        XCTAssertEqual(problems.map(\.block), [victim.hash])
        XCTAssertEqual(problems.first?.kind, .corrupt)
        XCTAssertEqual(problems.first?.path, "text.txt")
        let clean = try await BackupVerifier(repository: repository).verify(manifest)
        XCTAssertEqual(clean, [])
    }
}
