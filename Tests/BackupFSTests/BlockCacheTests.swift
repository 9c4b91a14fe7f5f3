@testable import BackupFS
@testable import Backupstore
import CLinux
import ConvoyTestSupport
import Foundation
import Synchronization
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The cache behind the mount: one fetch per block, read-ahead, the LRU's order, the disk cache.
final class BlockCacheTests: MountTestCase {
    func testConcurrentReadsOfOneBlockFetchItOnce() async throws {
        let tree = try await backUp("coalesce") { source in
            try TreeFixture.write(source + "/f.bin", TreeFixture.randomBytes(3 << 20, seed: 61))
        }
        let chunk = try XCTUnwrap(tree.entry("f.bin").chunks?.max { $0.length < $1.length })
        let mount = try mount(tree, options: .init(readAheadBlocks: 0, fetchDelay: 0.5))
        // O_DIRECT: each read reaches the file system as it is, not merged by the page cache.
        let fd = open(mount.mountpoint + "/f.bin", O_RDONLY | convoy_O_DIRECT)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let readers = 8
        let step = Int(chunk.length) / readers
        let results = Mutex([Int](repeating: 0, count: readers))
        DispatchQueue.concurrentPerform(iterations: readers) { index in
            var buffer = [UInt8](repeating: 0, count: 1000)
            let offset = off_t(chunk.offset) + off_t(index * step)
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            results.withLock { $0[index] = count }
        }
        close(fd)
        XCTAssertEqual(results.withLock { $0 }, Array(repeating: 1000, count: readers))
        XCTAssertEqual(mount.bytesFetched, UInt64(chunk.length), "\(readers) reads of one block fetched it once")
        try unmount(mount)
    }

    func testSequentialReadingPrefetchesAhead() async throws {
        let tree = try await backUp("readahead") { source in
            try TreeFixture.write(source + "/f.bin", TreeFixture.randomBytes(16 << 20, seed: 62))
        }
        let blocks = tree.manifest.blockHashes.count
        let delay = 0.1
        var elapsed: [Int: Duration] = [:]
        for readAhead in [0, 4] {
            let mount = try mount(tree, at: "mnt-\(readAhead)",
                                  options: .init(readAheadBlocks: readAhead, fetchDelay: delay))
            let started = ContinuousClock.now
            _ = try Self.readAll(mount.mountpoint + "/f.bin").get()
            elapsed[readAhead] = ContinuousClock.now - started
            try unmount(mount)
        }
        print("sequential read of \(blocks) blocks at \(delay) s a fetch: "
            + "without read-ahead \(elapsed[0] ?? .zero), with 4 blocks \(elapsed[4] ?? .zero)")
        let without = try XCTUnwrap(elapsed[0]), with = try XCTUnwrap(elapsed[4])
        XCTAssertLessThan(with, without * 0.6, "read-ahead should overlap the fetches")
    }

    /// The daemon's mounts share one memory for blocks: two mounts read through it never hold more than its
    /// capacity together, and a second mount of the same store reads what the first fetched without fetching.
    func testMountsShareOneBoundedMemory() async throws {
        let contents = (0..<3).map { TreeFixture.randomBytes(4 << 20, seed: UInt64(70 + $0)) }
        let tree = try await backUp("shared") { source in
            for (index, bytes) in contents.enumerated() { try TreeFixture.write(source + "/f\(index)", bytes) }
        }
        let memory = BlockMemory(capacity: 6 << 20)
        let first = try mount(tree, at: "mnt-a", options: .init(memory: memory, readAheadBlocks: 0))
        let second = try mount(tree, at: "mnt-b", options: .init(memory: memory, readAheadBlocks: 0))
        XCTAssertEqual(try Self.readAll(first.mountpoint + "/f2").get(), contents[2])
        XCTAssertEqual(try Self.readAll(second.mountpoint + "/f2").get(), contents[2])
        XCTAssertEqual(second.bytesFetched, 0, "the second mount found the first one's blocks in the shared memory")
        for index in 0..<2 {
            XCTAssertEqual(try Self.readAll(first.mountpoint + "/f\(index)").get(), contents[index])
            XCTAssertEqual(try Self.readAll(second.mountpoint + "/f\(index)").get(), contents[index])
        }
        XCTAssertGreaterThan(memory.peakBytes, 3 << 20)
        XCTAssertLessThanOrEqual(memory.peakBytes, 6 << 20, "two mounts together stay within the one ceiling")
        try unmount(first)
        try unmount(second)
    }

    func testConcurrentReadersOfManyFilesThroughASmallCache() async throws {
        let contents = (0..<4).map { TreeFixture.randomBytes(6 << 20, seed: UInt64(90 + $0)) }
        let tree = try await backUp("churn") { source in
            for (index, bytes) in contents.enumerated() { try TreeFixture.write(source + "/f\(index)", bytes) }
        }
        let mount = try mount(tree, options: .init(cacheBytes: 3 << 20, readAheadBlocks: 2))
        let mismatches = Mutex<[String]>([])
        // Three readers a file, with O_DIRECT so that every read reaches the cache rather than the page cache.
        DispatchQueue.concurrentPerform(iterations: 12) { reader in
            let index = reader % contents.count
            let fd = open(mount.mountpoint + "/f\(index)", O_RDONLY | convoy_O_DIRECT)
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 300_000 + reader * 1000)
            var offset = reader * 4096
            while offset < contents[index].count {
                let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
                let expected = contents[index][offset..<min(contents[index].count, offset + buffer.count)]
                guard count == expected.count, MountedTreeTests.same(buffer[0..<count], expected) else {
                    mismatches.withLock { $0.append("reader \(reader), f\(index) at \(offset): \(count) bytes") }
                    return
                }
                offset += count
            }
        }
        XCTAssertEqual(mismatches.withLock { $0 }, [])
        XCTAssertLessThanOrEqual(mount.filesystem.cache.peakCachedBytes, 3 << 20)
        try unmount(mount)
    }

    /// Small files packed together are fetched together: reading one brings the other blocks of its pack window,
    /// so the rest of the directory reads without another fetch, even once the pack is gone from the store.
    func testSmallFilesOfOnePackWindowAreFetchedWithTheFirst() async throws {
        let files = (0..<40).map { TreeFixture.randomBytes((8 << 10) + $0 * 512, seed: UInt64(300 + $0)) }
        let tree = try await backUp("window") { source in
            for (index, bytes) in files.enumerated() { try TreeFixture.write(source + "/s\(index)", bytes) }
        }
        let packs = try await tree.repository.packs.current(from: tree.repository.store).packs
        let packID = try XCTUnwrap(packs.keys.first)
        XCTAssertEqual(packs.count, 1)
        let total = UInt64(files.reduce(0) { $0 + $1.count })  // random bytes: stored raw, a block per file

        let narrow = try mount(tree, at: "narrow", options: .init(cacheBytes: 1 << 20, readAheadBlocks: 0))
        XCTAssertEqual(try Self.readAll(narrow.mountpoint + "/s7").get(), files[7])
        XCTAssertGreaterThanOrEqual(narrow.bytesFetched, UInt64(files[7].count))
        XCTAssertLessThan(narrow.bytesFetched, total, "a 1 MiB memory's windows are 128 KiB of the pack")
        try unmount(narrow)

        let mount = try mount(tree, options: .init(readAheadBlocks: 0))
        XCTAssertEqual(try Self.readAll(mount.mountpoint + "/s7").get(), files[7])
        // s7 is served first, its companions decoded after: wait for them (no timing asserted).
        try await Self.waitUntil { mount.bytesFetched >= total }
        XCTAssertEqual(mount.bytesFetched, total, "the first read fetched every block of its window")
        try FileManager.default.removeItem(atPath: tree.storeRoot + "/" + BackupRepository.packKey(packID))
        for (index, bytes) in files.enumerated() {
            XCTAssertEqual(try Self.readAll(mount.mountpoint + "/s\(index)").get(), bytes, "s\(index)")
        }
        XCTAssertEqual(mount.bytesFetched, total)
        try unmount(mount)
    }

    /// Reading a tree of small files keeps pack windows fetched ahead of the reader, each block fetched once.
    func testReadingSmallFilesFetchesTheNextWindowsAhead() async throws {
        let files = (0..<160).map { TreeFixture.randomBytes((12 << 10) + $0 * 61, seed: UInt64(400 + $0)) }
        let names = files.indices.map { String(format: "s%03d", $0) }
        let tree = try await backUp("ahead") { source in
            for (name, bytes) in zip(names, files) { try TreeFixture.write(source + "/" + name, bytes) }
        }
        // A 4 MiB memory: windows of 512 KiB, several of them; all 2.7 MB of files fit, so nothing is evicted (and
        // fetched again) before it is read.
        let mount = try mount(tree, options: .init(cacheBytes: 4 << 20))
        XCTAssertEqual(try Self.readAll(mount.mountpoint + "/" + names[0]).get(), files[0])
        let windows = try XCTUnwrap(mount.filesystem.cache.source.windows)
        let hashes = try names.map { try XCTUnwrap(tree.entry($0).chunks?.first?.hash) }
        let places = try XCTUnwrap(windows.windows(of: hashes), "the layout is built by the first read")
        let first = try XCTUnwrap(places[0])
        let firstWindowBytes = zip(places, files).filter { $0.0 == first }.reduce(0) { $0 + UInt64($1.1.count) }
        let placed = places.compactMap { $0 }
        XCTAssertEqual(placed.count, hashes.count, "every file packed")
        XCTAssertGreaterThanOrEqual(Set(placed).count, 5, "2.7 MB of files in 512 KiB windows")
        // The fetches ahead run in the background: wait for them (no timing asserted).
        try await Self.waitUntil { mount.bytesFetched > firstWindowBytes }
        XCTAssertGreaterThan(mount.bytesFetched, firstWindowBytes, "windows after the first were fetched ahead")
        for (name, bytes) in zip(names, files) {
            XCTAssertEqual(try Self.readAll(mount.mountpoint + "/" + name).get(), bytes, name)
        }
        let total = UInt64(files.reduce(0) { $0 + $1.count })
        XCTAssertEqual(mount.bytesFetched, total, "each block fetched once")
        try unmount(mount)
    }

    /// Polls `condition` for up to 10 s: for work a read leaves running in the background.
    static func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
    }

    func testLeastRecentlyUsedBlocksLeaveFirst() {
        var lru = BlockLRU(capacity: 10)
        lru.insert("a", PlainBlock([UInt8](repeating: 1, count: 4)))
        lru.insert("b", PlainBlock([UInt8](repeating: 2, count: 4)))
        XCTAssertEqual(lru.get("a")?.bytes, [1, 1, 1, 1])  // a is now the most recent
        lru.insert("c", PlainBlock([UInt8](repeating: 3, count: 4)))  // 12 > 10: b leaves
        XCTAssertFalse(lru.contains("b"))
        XCTAssertTrue(lru.contains("a") && lru.contains("c"))
        XCTAssertEqual(lru.bytes, 8)
        // larger than the cache: not kept, nothing evicted
        lru.insert("huge", PlainBlock([UInt8](repeating: 4, count: 11)))
        XCTAssertFalse(lru.contains("huge"))
        XCTAssertEqual(lru.bytes, 8)
        lru.insert("d", PlainBlock([UInt8](repeating: 5, count: 10)))  // evicts everything else
        XCTAssertEqual(lru.bytes, 10)
        XCTAssertTrue(lru.contains("d") && !lru.contains("a") && !lru.contains("c"))
        XCTAssertEqual(lru.peakBytes, 10)
    }

    func testDiskCacheServesVerifiedBlocks() async throws {
        let content = TreeFixture.randomBytes(4 << 20, seed: 63)
        let tree = try await backUp("disk") { source in try TreeFixture.write(source + "/f.bin", content) }
        let cacheDirectory = tree.scratch + "/disk-cache"
        let options = BackupMountOptions(diskCacheDirectory: cacheDirectory)
        let first = try mount(tree, at: "first", options: options)
        XCTAssertTrue(try Self.readAll(first.mountpoint + "/f.bin").get() == content)
        XCTAssertEqual(first.bytesFetched, UInt64(content.count))
        try unmount(first)

        // The store loses every block but one (its packs too), whose cached copy is damaged instead.
        let hashes = try XCTUnwrap(tree.entry("f.bin").chunks?.map(\.hash))
        XCTAssertGreaterThan(hashes.count, 1)
        let damagedChunk = try XCTUnwrap(tree.looseChunks("f.bin").first)
        let damaged = damagedChunk.hash
        let cachedCopy = "\(cacheDirectory)/convoy-backupstore/blocks/\(damaged.prefix(2))/\(damaged)"
        XCTAssertTrue(FileManager.default.fileExists(atPath: cachedCopy))
        try TreeFixture.write(cachedCopy, TreeFixture.randomBytes(100, seed: 64))
        for chunk in try tree.looseChunks("f.bin") where chunk.hash != damaged {
            try FileManager.default.removeItem(atPath: tree.blockFile(chunk.hash))
        }
        try tree.removePacks()

        let log = LogLines()
        let second = try mount(tree, at: "second", options: options, log: log)
        XCTAssertTrue(try Self.readAll(second.mountpoint + "/f.bin").get() == content)
        XCTAssertEqual(second.bytesFetched, UInt64(damagedChunk.length), "only the damaged copy was fetched again")
        XCTAssertTrue(log.all.contains { $0.contains("disk cache") && $0.contains(damaged) }, "\(log.all)")
        try unmount(second)
    }
}
