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
        let corrupt = try XCTUnwrap(tree.entry("a.bin").chunks?.last?.hash)
        let missing = try XCTUnwrap(tree.entry("b.bin").chunks?.first?.hash)
        try TreeFixture.write(tree.blockFile(corrupt), TreeFixture.randomBytes(1000, seed: 34))
        try FileManager.default.removeItem(atPath: tree.blockFile(missing))
        func users(_ hash: String) -> Set<String> {
            Set(tree.manifest.entries.filter { $0.chunks?.contains { $0.hash == hash } ?? false }.map(\.path))
        }
        XCTAssertEqual(users(corrupt), ["a.bin", "copy/a-again.bin"])
        XCTAssertEqual(users(missing), ["b.bin"])

        let log = LogLines()
        let mount = try mount(tree, log: log)
        for (path, expected) in contents {
            switch Self.readAll(mount.mountpoint + "/" + path) {
            case .success(let bytes):
                XCTAssertFalse(users(corrupt).union(users(missing)).contains(path), "\(path) read despite its damaged block")
                XCTAssertTrue(bytes == expected, "\(path) read wrong bytes")
            case .failure(let error):
                XCTAssertEqual(error.code, .EIO, path)
                XCTAssertTrue(users(corrupt).union(users(missing)).contains(path), "\(path) failed: \(error)")
            }
        }
        // The bytes before the damaged block still read (one block of a.bin precedes it when it has several).
        for (hash, path, problem) in [(corrupt, "a.bin", "corrupt"), (corrupt, "copy/a-again.bin", "corrupt"), (missing, "b.bin", "missing")] {
            XCTAssertTrue(log.all.contains { $0.contains(hash) && $0.contains("/\(path) ") && $0.contains(problem) },
                          "no log line names \(hash) and \(path): \(log.all)")
        }
        try unmount(mount)
    }

    func testCorruptPackedBlockFailsOnlyTheFilesThatUseIt() async throws {
        var contents: [String: [UInt8]] = [:]
        for index in 0..<24 { contents["small-\(index)"] = TreeFixture.randomBytes((8 + index) << 10, seed: 40 + UInt64(index)) }
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
            XCTAssertTrue(log.all.contains { $0.contains(victim) && $0.contains("/\(path) ") && $0.contains("corrupt") },
                          "no log line names \(victim) and \(path): \(log.all)")
        }
        try unmount(mount)
    }
}
