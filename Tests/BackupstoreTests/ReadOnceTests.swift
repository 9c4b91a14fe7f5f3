@testable import Backupstore
import CLinux
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest

/// `getOnce` reads around the page cache (O_DIRECT) where the filesystem allows it and falls back where it does
/// not; either way a reader gets exactly the object's bytes, and a block decoded in place equals the one decoded
/// by copy.
final class ReadOnceTests: XCTestCase {
    private func stores() throws -> [(String, FileObjectStore)] {
        // The disk (O_DIRECT) and /dev/shm (tmpfs: O_DIRECT refused at open, the buffered fallback).
        let disk = NSTemporaryDirectory() + "convoy-read-once-\(UUID().uuidString)"
        let memory = "/dev/shm/convoy-read-once-\(UUID().uuidString)"
        addTeardownBlock {
            try? FileManager.default.removeItem(atPath: disk)
            try? FileManager.default.removeItem(atPath: memory)
        }
        return [("disk", try FileObjectStore(root: disk)), ("tmpfs", try FileObjectStore(root: memory))]
    }

    /// The error `body` throws, nil when it succeeds.
    private func outcome(_ body: () async throws(ConvoyError) -> Void) async -> ConvoyError? {
        do { try await body() } catch { return error }
        return nil
    }

    func testEveryObjectSizeReadsBackExactly() async throws {
        for (kind, store) in try stores() {
            for size in [0, 1, 511, 4095, 4096, 4097, (1 << 20) + 3, 3 * 4096] {
                let bytes = TreeFixture.randomBytes(size, seed: UInt64(size + 1))
                try await store.put("objects/\(size)", bytes)
                let read = try await store.getOnce("objects/\(size)")
                XCTAssertEqual(read.withUnsafeBytes { Array($0) }, bytes, "\(kind), \(size) bytes")
            }
            let missing = await outcome { () throws(ConvoyError) in _ = try await store.getOnce("objects/missing") }
            XCTAssertEqual(missing?.kind, .notFound, "\(kind): \(missing?.message ?? "a missing object was read")")
        }
    }

    /// Packs are written from aligned memory with O_DIRECT, padded to whole blocks and truncated back; ranges of
    /// them are read with aligned direct reads. Both must give exactly the bytes, at every length and offset.
    func testAlignedWritesAndRangeReadsGiveExactlyTheBytes() async throws {
        for (kind, store) in try stores() {
            for size in [1, 4095, 4096, 4097, (8 << 20) + 123] {
                let bytes = TreeFixture.randomBytes(size, seed: UInt64(size + 7))
                let buffer = try XCTUnwrap(AlignedBuffer(capacity: size))
                _ = bytes.withUnsafeBytes { buffer.append($0) }
                try await store.putDeferred("packs/\(size)", aligned: buffer)
                try await store.commitDeferred()
                let whole = try await store.get("packs/\(size)")
                XCTAssertEqual(whole, bytes, "\(kind), \(size) bytes")
                for (offset, length) in [(0, size), (size / 3, size / 2 + 1), (size - 1, 1), (size / 2, size)]
                    where length > 0 {
                    let expected = Array(bytes[offset..<min(size, offset + length)])
                    let range = try await store.getRange("packs/\(size)", offset: offset, length: length)
                    XCTAssertEqual(range, expected, "\(kind), \(size) bytes, range \(offset)+\(length)")
                    let once = try await store.getOnceRange("packs/\(size)", offset: offset, length: length)
                    XCTAssertEqual(once.withUnsafeBytes { Array($0) }, expected,
                                   "\(kind), \(size) bytes, direct range \(offset)+\(length)")
                }
            }
            let missing = await outcome { () throws(ConvoyError) in
                _ = try await store.getOnceRange("packs/missing", offset: 0, length: 9)
            }
            XCTAssertEqual(missing?.kind, .notFound, "\(kind): \(missing?.message ?? "a missing object was read")")
        }
    }

    func testBlocksDecodedInPlaceEqualTheirContentAndBadOnesAreRefused() async throws {
        for (kind, store) in try stores() {
            let repository = BackupRepository(store: store)
            let random = TreeFixture.randomBytes(300_001, seed: 9)  // stored raw
            let text = [UInt8](String(repeating: "convoy lazily restores ", count: 20_000).utf8)  // stored compressed
            for plain in [random, text] {
                let hash = BlockCodec.hash(plain)
                try await repository.putBlockNow(hash: hash, encoded: plain.withUnsafeBytes { BlockCodec.encode($0) })
                let inPlace = try await repository.plainBlockReadOnce(hash)
                XCTAssertEqual(inPlace.bytes, plain, kind)
            }
            // A raw block whose last byte changed on disk: refused, naming the block.
            let hash = BlockCodec.hash(random)
            var damaged = random.withUnsafeBytes { BlockCodec.encode($0) }
            damaged[damaged.count - 1] ^= 0xff
            try await store.put(BackupRepository.blockKey(hash), damaged)
            let damagedRead = await outcome { () throws(ConvoyError) in
                _ = try await repository.plainBlockReadOnce(hash)
            }
            let message = damagedRead?.message ?? "\(kind): a damaged block was served"
            XCTAssertTrue(message.contains(hash) && message.contains("corrupt"), message)
        }
    }

    /// Large files are read around the page cache with the next read in flight; the chunks must be exactly those
    /// of chunking the whole file at once (else deduplication against older backups would break), on a disk
    /// (O_DIRECT) and on tmpfs (the buffered fallback), and the restore must equal the source.
    /// Files whose pages are all cached are read through the cache (no disk read), others around it; on disk
    /// both ways are exercised.
    func testLargeFilesChunkAsIfReadWholeAndRestoreExactly() async throws {
        let sources = [("/dev/shm", false), (NSTemporaryDirectory(), true), (NSTemporaryDirectory(), false)]
        for (parent, evicted) in sources {
            let source = parent + "/convoy-source-\(UUID().uuidString)"
            addTeardownBlock { try? FileManager.default.removeItem(atPath: source) }
            try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
            let random = TreeFixture.randomBytes((9 << 20) + 7, seed: 21)
            let text = [UInt8](String(repeating: "backups are read once, block by block; ", count: 900_000).utf8)
            try TreeFixture.write(source + "/random.bin", random)
            try TreeFixture.write(source + "/text.txt", text)
            if evicted {
                for name in ["random.bin", "text.txt"] {
                    try evict(source + "/" + name)
                    XCTAssertNotEqual(try cachedState(source + "/" + name), true, "\(name) is still in the page cache")
                }
            }
            let store = try FileObjectStore(root: source + "-store")
            addTeardownBlock { try? FileManager.default.removeItem(atPath: source + "-store") }
            let repository = BackupRepository(store: store)
            let manifest = try await FileBackupWriter(repository: repository).backup(.init(
                source: source, volume: "large", backupID: "backup-large1", snapshot: nil, parent: nil, volumeSize: 0)
            ).manifest
            for (name, bytes) in [("random.bin", random), ("text.txt", text)] {
                let chunks = try XCTUnwrap(manifest.entries.first { $0.path == ByteString(name) }?.chunks)
                var expected: [String] = []
                bytes.withUnsafeBytes { raw in
                    var start = 0
                    while start < raw.count {
                        let length = FastCDC.forFile(ofSize: UInt64(raw.count))
                            .cut(UnsafeRawBufferPointer(rebasing: raw[start...]))
                        expected.append(BlockCodec.hash(
                            UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)])))
                        start += length
                    }
                }
                XCTAssertEqual(chunks.map(\.hash), expected, "\(source)/\(name), evicted: \(evicted)")
            }
            let target = source + "-restored"
            addTeardownBlock { try? FileManager.default.removeItem(atPath: target) }
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
            try await FileRestorer(repository: repository).restore(manifest, into: target)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: target + "/random.bin")), Data(random))
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: target + "/text.txt")), Data(text))
        }
    }

    /// A file just written is in the page cache and read through it; once evicted it is read around it. Either
    /// way the bytes are the file's.
    func testCachedObjectsAreReadThroughTheCacheOthersAroundIt() async throws {
        let root = NSTemporaryDirectory() + "convoy-cached-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: root) }
        let store = try FileObjectStore(root: root)
        let bytes = TreeFixture.randomBytes((2 << 20) + 5, seed: 33)
        try await store.put("objects/one", bytes)
        let path = root + "/objects/one"
        guard let cached = try cachedState(path) else {
            throw XCTSkip("this kernel has no cachestat(2) (Linux 6.5); every object is read around the cache")
        }
        XCTAssertTrue(cached, "a file just written should be in the page cache")
        let whileCached = try await store.getOnce("objects/one").withUnsafeBytes { Array($0) }
        XCTAssertEqual(whileCached, bytes)
        try evict(path)
        XCTAssertEqual(try cachedState(path), false, "the file should have left the page cache")
        let fromDisk = try await store.getOnce("objects/one").withUnsafeBytes { Array($0) }
        XCTAssertEqual(fromDisk, bytes)
        // A direct read leaves the file out of the cache: it was read once.
        XCTAssertEqual(try cachedState(path), false, "a direct read should not fill the page cache")
    }

    /// Writes the file's pages out and drops them from the page cache.
    private func evict(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        XCTAssertEqual(fsync(fd), 0)
        XCTAssertEqual(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0)
    }

    /// Whether all of the file is in the page cache; nil when the kernel cannot say.
    private func cachedState(_ path: String) throws -> Bool? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        guard convoy_cached_pages(fd) >= 0 else { return nil }
        var info = stat()
        XCTAssertEqual(fstat(fd, &info), 0)
        return UncachedRead.isCached(fd, size: UInt64(info.st_size))
    }
}
