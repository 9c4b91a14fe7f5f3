@testable import BackupFS
import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Big directories list quickly; big files read within a bounded cache; sequential reads are fast.
final class ScaleTests: MountTestCase {
    func testDirectoryOfOneHundredThousandEntriesListsQuickly() async throws {
        let count = 100_000
        let tree = try await backUp("wide") { source in
            try FileManager.default.createDirectory(atPath: source + "/wide", withIntermediateDirectories: true)
            for index in 0..<count {
                let fd = open(source + "/wide/f\(index)", O_WRONLY | O_CREAT, 0o644)
                guard fd >= 0 else { throw FixtureError("create f\(index): \(errno)") }
                close(fd)
            }
        }
        let mount = try mount(tree)
        let directory = mount.mountpoint + "/wide"

        let started = ContinuousClock.now
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        let elapsed = ContinuousClock.now - started
        print("listing \(count) entries (opendir/readdir, cold) took \(elapsed)")
        XCTAssertEqual(names.count, count)
        XCTAssertEqual(Set(names), Set((0..<count).map { "f\($0)" }))
        XCTAssertLessThan(elapsed, .seconds(5))

        let lsStarted = ContinuousClock.now
        let listing = try Self.run("/bin/ls", ["-f", directory])
        print("ls -f of \(count) entries (cached) took \(ContinuousClock.now - lsStarted)")
        XCTAssertEqual(listing.status, 0)
        XCTAssertEqual(listing.output.split(separator: "\n").count, count + 2, "the names and . and ..")
        var info = stat()
        XCTAssertEqual(lstat(directory + "/f99999", &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFREG)
        try unmount(mount)
    }

    func testReadingMoreThanTheCacheKeepsItWithinItsBound() async throws {
        let content = TreeFixture.randomBytes(64 << 20, seed: 51)
        let tree = try await backUp("bound") { source in try TreeFixture.write(source + "/big.bin", content) }
        let cacheBytes = 8 << 20
        let mount = try mount(tree, options: .init(cacheBytes: cacheBytes))
        let read = try Self.readAll(mount.mountpoint + "/big.bin").get()
        XCTAssertTrue(read == content, "64 MiB read through an 8 MiB cache differ from the source")
        let peak = mount.filesystem.cache.peakCachedBytes
        print("cache peak \(peak) bytes of \(cacheBytes); fetched \(mount.bytesFetched)")
        XCTAssertGreaterThan(peak, 0)
        XCTAssertLessThanOrEqual(peak, cacheBytes)
        XCTAssertGreaterThanOrEqual(mount.bytesFetched, UInt64(content.count))
        XCTAssertLessThan(mount.bytesFetched, UInt64(content.count) * 5 / 4,
                          "read-ahead pushed blocks out before they were read")
        try unmount(mount)
    }

    func testColdSequentialReadThroughput() async throws {
        let size = 256
        let tree = try await backUp("throughput") { source in
            let made = try Self.run("/usr/bin/dd", ["if=/dev/urandom", "of=\(source)/big.bin", "bs=1M", "count=\(size)",
                                                    "status=none"])
            guard made.status == 0 else { throw FixtureError("dd: \(made.output)") }
        }
        // Cold: nothing in the mount's caches, and the store's blocks out of the page cache too.
        for hash in tree.manifest.blockHashes {
            let fd = open(tree.blockFile(hash), O_RDONLY)
            _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
            close(fd)
        }
        let mount = try mount(tree)
        // The kernel's read-ahead was raised for this mount, so sequential reads come as 1 MiB requests.
        let device = try XCTUnwrap(MountInfo.mount(at: mount.mountpoint))
        let readAhead = try String(contentsOfFile: "/sys/class/bdi/\(device.major):\(device.minor)/read_ahead_kb",
                                   encoding: .utf8)
        XCTAssertEqual(readAhead.trimmingCharacters(in: .whitespacesAndNewlines), "1024")
        let result = try Self.run("/usr/bin/dd", ["if=\(mount.mountpoint)/big.bin", "of=/dev/null", "bs=1M"])
        XCTAssertEqual(result.status, 0, result.output)
        let summary = result.output.split(separator: "\n").last.map(String.init) ?? ""
        print("cold sequential read of \(size) MiB through the mount (dd bs=1M): \(summary)")
        XCTAssertTrue(summary.contains("\(size << 20) bytes"), summary)
        XCTAssertGreaterThanOrEqual(mount.bytesFetched, UInt64(size << 20))
        try unmount(mount)
    }
}
