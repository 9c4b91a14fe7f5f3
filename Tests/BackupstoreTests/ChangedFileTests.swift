@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A changed file is reread, but its parent's chunks are kept where its bytes are the same: the manifest must be
/// exactly the one a backup without a parent writes (same cuts, same block names), the restore must give the
/// bytes back, and only the changed regions may be hashed. Run on a disk (large files read with O_DIRECT once
/// out of the page cache) and on tmpfs (buffered reads).
final class ChangedFileTests: XCTestCase {
    private func sources() throws -> [(String, String)] {
        let disk = try TreeFixture.temporaryDirectory("changed")
        let memory = "/dev/shm/convoy-changed-\(UUID().uuidString)"
        addTeardownBlock {
            try? FileManager.default.removeItem(atPath: disk)
            try? FileManager.default.removeItem(atPath: memory)
        }
        return [("disk", disk), ("tmpfs", memory)]
    }

    private func backup(_ repository: BackupRepository, _ source: String, id: String,
                        parent: Manifest?) async throws -> FileBackupWriter.Outcome {
        try await FileBackupWriter(repository: repository).backup(.init(
            source: source, volume: "changed", backupID: id, snapshot: nil, parent: parent, volumeSize: 0))
    }

    /// Writes `bytes` at `offset` of `path` and, on a disk, pushes the file out of the page cache.
    private func patch(_ path: String, at offset: Int, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY)
        bytes.withUnsafeBytes { _ = pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        fsync(fd)
        close(fd)
    }

    private func evict(_ directory: String) throws {
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            let fd = open(directory + "/" + name, O_RDONLY)
            fdatasync(fd)
            _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
            close(fd)
        }
    }

    /// Restores `manifest` into a new directory under `root`; the bytes of `name` there.
    private func restoredBytes(_ name: String, of manifest: Manifest, from repository: BackupRepository,
                               root: String) async throws -> [UInt8] {
        let target = root + "/restored-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try await FileRestorer(repository: repository).restore(manifest, into: target)
        return try Array(Data(contentsOf: URL(fileURLWithPath: target + "/" + name)))
    }

    private func layout(_ manifest: Manifest) -> [String: [String]] {
        var files: [String: [String]] = [:]
        for entry in manifest.entries where entry.type == .file {
            files[entry.path.description] = (entry.chunks ?? []).map { "\($0.offset)+\($0.length) \($0.hash)" }
        }
        return files
    }

    func testChangedFilesKeepUnchangedChunksAndGiveTheFullRescansManifest() async throws {
        for (kind, root) in try sources() {
            let source = root + "/source"
            try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
            let size = 40 << 20
            try TreeFixture.write(source + "/database", TreeFixture.randomBytes(size, seed: 31))
            try TreeFixture.write(source + "/log", TreeFixture.randomBytes(12 << 20, seed: 32))
            try TreeFixture.write(source + "/shifted", TreeFixture.randomBytes(10 << 20, seed: 33))
            try TreeFixture.write(source + "/small", TreeFixture.randomBytes(300 << 10, seed: 34))
            let repository = BackupRepository(store: try FileObjectStore(root: root + "/store"))
            try evict(source)
            let first = try await backup(repository, source, id: "backup-first", parent: nil)

            // In place: three 1 MiB regions of the database, one byte of the small file. Appended: 3 MiB to the
            // log. Inserted: 1,000 bytes in the middle of `shifted`, which moves everything after them.
            for (index, offset) in [3 << 20, 17 << 20, (39 << 20) + 5].enumerated() {
                patch(source + "/database", at: offset, TreeFixture.randomBytes(1 << 20, seed: UInt64(40 + index)))
            }
            patch(source + "/small", at: 1000, [0x5a])
            let log = FileHandle(forWritingAtPath: source + "/log")
            try log?.seekToEnd()
            try log?.write(contentsOf: TreeFixture.randomBytes(3 << 20, seed: 45))
            try log?.close()
            var shifted = try Array(Data(contentsOf: URL(fileURLWithPath: source + "/shifted")))
            shifted.insert(contentsOf: TreeFixture.randomBytes(1000, seed: 46), at: 5 << 20)
            try TreeFixture.write(source + "/shifted", shifted)
            try evict(source)

            let incremental = try await backup(repository, source, id: "backup-second", parent: first.manifest)
            let rescan = try await backup(repository, source, id: "backup-rescan", parent: nil)
            // The last database patch runs 5 bytes past its end.
            let changedBytes = UInt64(size + 5 + (15 << 20) + (10 << 20) + 1000 + (300 << 10))
            XCTAssertEqual(incremental.manifest.stats.bytesRead, changedBytes, kind)
            XCTAssertEqual(rescan.bytesHashed, changedBytes, "\(kind): a backup without a parent hashes it all")
            XCTAssertEqual(layout(incremental.manifest), layout(rescan.manifest),
                           "\(kind): the kept chunks are the ones a full rescan cuts")
            // Changed: ~3 MiB plus the chunks around them, the log's tail, the chunks around the insertion, the
            // small file. Well under half of what was reread.
            XCTAssertLessThan(incremental.bytesHashed, changedBytes / 3,
                              "\(kind): hashed \(incremental.bytesHashed) of \(changedBytes) bytes reread")
            XCTAssertGreaterThan(incremental.bytesHashed, UInt64(3 << 20), kind)

            let target = root + "/restored"
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
            try await FileRestorer(repository: repository).restore(incremental.manifest, into: target)
            XCTAssertEqual(try TreeFixture.describe(target), try TreeFixture.describe(source), kind)
        }
    }

    /// A parent whose recorded checksum no longer matches the bytes (the data changed without its size or
    /// length moving) must not lend its chunk: the bytes are hashed again and the new block stored.
    func testSameLengthRewriteIsHashedAgain() async throws {
        let root = try XCTUnwrap(try sources().last?.1)
        let source = root + "/source"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try TreeFixture.write(source + "/file", TreeFixture.randomBytes(9 << 20, seed: 51))
        let repository = BackupRepository(store: try FileObjectStore(root: root + "/store"))
        let first = try await backup(repository, source, id: "backup-a", parent: nil)
        let replacement = TreeFixture.randomBytes(9 << 20, seed: 52)
        patch(source + "/file", at: 0, replacement)
        let second = try await backup(repository, source, id: "backup-b", parent: first.manifest)
        XCTAssertEqual(second.bytesHashed, UInt64(9 << 20))
        let hashes = Set((second.manifest.entries.first { $0.type == .file }?.chunks ?? []).map(\.hash))
        let oldHashes = Set((first.manifest.entries.first { $0.type == .file }?.chunks ?? []).map(\.hash))
        XCTAssertTrue(hashes.isDisjoint(with: oldHashes))
        let restored = try await restoredBytes("file", of: second.manifest, from: repository, root: root)
        XCTAssertEqual(restored, replacement)
    }

    /// A store on a disk holding one backup of a tree of one file, `name` with `bytes`.
    private func firstBackup(of name: String, _ bytes: [UInt8]) async throws
        -> (root: String, source: String, repository: BackupRepository, manifest: Manifest) {
        let root = try XCTUnwrap(try sources().first?.1)
        let source = root + "/source"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try TreeFixture.write(source + "/" + name, bytes)
        let repository = BackupRepository(store: try FileObjectStore(root: root + "/store"))
        let first = try await backup(repository, source, id: "backup-a", parent: nil)
        return (root, source, repository, first.manifest)
    }

    /// A file under `FastCDC.largeFile` is cut into chunks of about 256 KiB: an insert into a document costs the
    /// chunk it lands in, not a 1 MiB one. (With 1 MiB chunks for every file this insert stored 1.4 MB anew.)
    func testAnInsertIntoADocumentStoresOnlyTheSmallChunkAroundIt() async throws {
        var document = TreeFixture.randomBytes(5 << 19, seed: 61)
        let (root, source, repository, first) = try await firstBackup(of: "document", document)
        let chunks = try XCTUnwrap(first.entries.first { $0.type == .file }?.chunks)
        XCTAssertTrue(chunks.allSatisfy { $0.length <= FastCDC.smallerFiles.maximum }, "\(chunks.map(\.length))")

        document.insert(contentsOf: TreeFixture.randomBytes(4096, seed: 62), at: 5 << 18)
        try TreeFixture.write(source + "/document", document)
        let second = try await backup(repository, source, id: "backup-b", parent: first)
        let stored = second.manifest.stats.newBytesStored
        XCTAssertGreaterThan(stored, 4096)
        XCTAssertLessThan(stored, UInt64(768 << 10), "a 4 KiB insert stored \(stored) bytes anew")
        let restored = try await restoredBytes("document", of: second.manifest, from: repository, root: root)
        XCTAssertEqual(restored, document)
    }

    /// A file that grows past `FastCDC.largeFile` is cut with the large chunks from then on: its parent's small
    /// chunks are not kept where the large chunker would not cut, so the manifest is still a full rescan's.
    func testAFileGrowingIntoALargeOneIsCutAsARescanWould() async throws {
        let start = TreeFixture.randomBytes(15 << 20, seed: 71)
        let (root, source, repository, first) = try await firstBackup(of: "growing", start)
        let grown = start + TreeFixture.randomBytes(2 << 20, seed: 72)
        try TreeFixture.write(source + "/growing", grown)
        let second = try await backup(repository, source, id: "backup-b", parent: first)
        let rescan = try await backup(repository, source, id: "backup-c", parent: nil)
        XCTAssertEqual(layout(second.manifest), layout(rescan.manifest))
        let lengths = (second.manifest.entries.first { $0.type == .file }?.chunks ?? []).map(\.length)
        XCTAssertGreaterThan(lengths.max() ?? 0, UInt32(FastCDC.smallerFiles.maximum), "\(lengths)")
        let restored = try await restoredBytes("growing", of: second.manifest, from: repository, root: root)
        XCTAssertEqual(restored, grown)
    }
}
