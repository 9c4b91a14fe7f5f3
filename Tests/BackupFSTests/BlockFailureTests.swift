@testable import BackupFS
@testable import Backupstore
import ConvoyTestSupport
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A damaged store fails the reads that need the damaged blocks, and only those, with EIO and a log line naming
/// the block and the file. Never other bytes.
final class BlockFailureTests: MountTestCase {
    func testCorruptOrMissingBlockFailsExactlyTheFilesThatUseIt() async throws {
        let shared = TreeFixture.randomBytes(2 << 20, seed: 31)
        let contents: [String: [UInt8]] = [
            "a.bin": shared,
            "copy/a-again.bin": shared,  // the same blocks, deduplicated
            "b.bin": TreeFixture.randomBytes(2 << 20, seed: 32),
            "c.bin": TreeFixture.randomBytes(3 << 20, seed: 33),
            "d.txt": Array("small and fine\n".utf8),
        ]
        let tree = try await backUp("damage") { source in
            try FileManager.default.createDirectory(atPath: source + "/copy", withIntermediateDirectories: true)
            for (path, bytes) in contents { try TreeFixture.write(source + "/" + path, bytes) }
        }
        // Blocks stored as objects of their own (a file's ~256 KiB chunks may also sit in packs).
        let corrupt = try XCTUnwrap(tree.looseChunks("a.bin").last?.hash)
        let missing = try XCTUnwrap(tree.looseChunks("b.bin").first?.hash)
        try TreeFixture.write(tree.blockFile(corrupt), TreeFixture.randomBytes(1000, seed: 34))
        try FileManager.default.removeItem(atPath: tree.blockFile(missing))
        func users(_ hash: String) -> Set<String> {
            Set(tree.manifest.entries.filter { $0.chunks?.contains { $0.hash == hash } ?? false }
                .map(\.path.description))
        }
        XCTAssertEqual(users(corrupt), ["a.bin", "copy/a-again.bin"])
        XCTAssertEqual(users(missing), ["b.bin"])

        let log = LogLines()
        let mount = try mount(tree, log: log)
        for (path, expected) in contents {
            switch Self.readAll(mount.mountpoint + "/" + path) {
            case .success(let bytes):
                XCTAssertFalse(users(corrupt).union(users(missing)).contains(path),
                               "\(path) read despite its damaged block")
                XCTAssertTrue(bytes == expected, "\(path) read wrong bytes")
            case .failure(let error):
                XCTAssertEqual(error.code, .EIO, path)
                XCTAssertTrue(users(corrupt).union(users(missing)).contains(path), "\(path) failed: \(error)")
            }
        }
        // The bytes before the damaged block still read (one block of a.bin precedes it when it has several).
        for (hash, path, problem) in [(corrupt, "a.bin", "corrupt"), (corrupt, "copy/a-again.bin", "corrupt"),
                                      (missing, "b.bin", "missing")] {
            XCTAssertTrue(log.all.contains { $0.contains(hash) && $0.contains("/\(path) ") && $0.contains(problem) },
                          "no log line names \(hash) and \(path): \(log.all)")
        }
        try unmount(mount)
    }

    /// Reads check the checksum the manifest records for each block: an intact block (its content still matches
    /// its name) whose recorded checksum differs fails the read of that file alone.
    func testBlockDisagreeingWithItsRecordedChecksumFailsItsFile() async throws {
        let contents: [String: [UInt8]] = [
            "random.bin": TreeFixture.randomBytes(3 << 20, seed: 71),
            "text.txt": Array(String(repeating: "read through the checksum\n", count: 100_000).utf8),
        ]
        var tree = try await backUp("checksum") { source in
            for (path, bytes) in contents { try TreeFixture.write(source + "/" + path, bytes) }
        }
        for entry in tree.manifest.entries where entry.type == .file {
            XCTAssertTrue(entry.chunks?.allSatisfy { $0.checksum != nil } ?? false,
                          "\(entry.path) has chunks without checksums")
        }
        let index = try XCTUnwrap(tree.manifest.entries.firstIndex { $0.path == "random.bin" })
        var chunks = try XCTUnwrap(tree.manifest.entries[index].chunks)
        let victim = try XCTUnwrap(chunks.last)
        let recorded = try XCTUnwrap(victim.checksum)
        chunks[chunks.count - 1].checksum = BlockChecksum(high: recorded.high ^ 1, low: recorded.low)
        tree.manifest.entries[index].chunks = chunks

        let log = LogLines()
        let mount = try mount(tree, log: log)
        guard case .failure(let error) = Self.readAll(mount.mountpoint + "/random.bin") else {
            return XCTFail("random.bin read despite a block that disagrees with its recorded checksum")
        }
        XCTAssertEqual(error.code, .EIO)
        XCTAssertTrue(Self.readAll(mount.mountpoint + "/text.txt") == .success(contents["text.txt"] ?? []))
        XCTAssertTrue(log.all.contains { $0.contains(victim.hash) && $0.contains("checksum")
                                             && $0.contains("/random.bin ") },
                      "no log line names \(victim.hash) and its checksum: \(log.all)")
        try unmount(mount)
    }

    func testCorruptPackedBlockFailsOnlyTheFilesThatUseIt() async throws {
        var contents: [String: [UInt8]] = [:]
        for index in 0..<24 {
            contents["small-\(index)"] = TreeFixture.randomBytes((8 + index) << 10, seed: 40 + UInt64(index))
        }
        contents["dup/small-5"] = contents["small-5"]
        let tree = try await backUp("packed") { source in
            try FileManager.default.createDirectory(atPath: source + "/dup", withIntermediateDirectories: true)
            for (path, bytes) in contents { try TreeFixture.write(source + "/" + path, bytes) }
        }
        // All these blocks share one pack; damage the one of small-5 (and so of its copy) inside it.
        let victim = try XCTUnwrap(tree.entry("small-5").chunks?.first?.hash)
        let packs = try await tree.repository.packs.current(from: tree.repository.store).packs
        XCTAssertEqual(packs.count, 1)
        let (packID, entries) = try XCTUnwrap(packs.first)
        let place = try XCTUnwrap(entries.first { $0.hash == victim })
        let packFile = tree.storeRoot + "/" + BackupRepository.packKey(packID)
        var pack = try Array(Data(contentsOf: URL(fileURLWithPath: packFile)))
        pack[place.offset + place.length - 1] ^= 0x5a
        try Data(pack).write(to: URL(fileURLWithPath: packFile))

        let log = LogLines()
        let mount = try mount(tree, log: log)
        for (path, expected) in contents {
            switch Self.readAll(mount.mountpoint + "/" + path) {
            case .success(let bytes):
                XCTAssertFalse(path.hasSuffix("small-5"), "\(path) read despite its damaged block")
                XCTAssertTrue(bytes == expected, "\(path) read wrong bytes")
            case .failure(let error):
                XCTAssertEqual(error.code, .EIO, path)
                XCTAssertTrue(path.hasSuffix("small-5"), "\(path) failed: \(error)")
            }
        }
        for path in ["small-5", "dup/small-5"] {
            XCTAssertTrue(log.all.contains { $0.contains(victim) && $0.contains("/\(path) ")
                                                 && $0.contains("corrupt") },
                          "no log line names \(victim) and \(path): \(log.all)")
        }
        try unmount(mount)
    }
}
