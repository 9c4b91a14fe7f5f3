@testable import BackupFS
import Backupstore
import CLinux
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The mounted backup shows the tree it was made from: names, content, metadata and every kind of entry.
final class MountedTreeTests: MountTestCase {
    func testMountedBackupEqualsTheSourceTree() async throws {
        let tree = try await backUp("rich") { source in
            try TreeFixture.makeRichTree(at: source)
            // The kinds the fixture lacks: devices and a socket.
            guard mknod(source + "/null-device", S_IFCHR | 0o666, dev_t(1 << 8 | 3)) == 0,
                  mknod(source + "/dir/loop-device", S_IFBLK | 0o660, dev_t(7 << 8 | 0)) == 0,
                  mknod(source + "/dir/socket", S_IFSOCK | 0o755, 0) == 0 else { throw FixtureError("mknod: \(errno)") }
        }
        let mount = try mount(tree)
        let mounted = mount.mountpoint
        let entry = try XCTUnwrap(Self.mountEntry(mounted))
        XCTAssertEqual(entry[0], "convoy-backup")
        XCTAssertEqual(entry[2], "fuse.convoy-backup")
        let options = Set(entry[3].split(separator: ",").map(String.init))
        XCTAssertTrue(options.isSuperset(of: ["ro", "default_permissions", "allow_other", "max_read=1048576"]),
                      entry[3])

        // diff cannot compare fifos and sockets: it names each pair (exit status 1) even when both sides agree.
        let diff = try Self.run("/usr/bin/diff", ["-r", "--no-dereference", tree.source, mounted])
        let differences = diff.output.split(separator: "\n").filter { line in
            !["fifo", "socket"].contains { kind in
                line.hasSuffix(" is a \(kind)") && line.contains(" is a \(kind) while file ")
            }
        }
        XCTAssertLessThanOrEqual(diff.status, 1, diff.output)
        XCTAssertEqual(differences, [], diff.output)
        XCTAssertTrue(diff.output.contains("/dir/pipe is a fifo while file \(mounted)/dir/pipe is a fifo"), diff.output)

        let expected = try TreeFixture.describe(tree.source)
        let actual = try TreeFixture.describe(mounted)
        XCTAssertEqual(Set(actual.keys), Set(expected.keys))
        for (path, facts) in expected {
            XCTAssertEqual(actual[path], facts, "entry '\(path)'")
        }
        for path in ["null-device", "dir/loop-device", "dir/socket", "dir/pipe"] {
            var original = stat(), shown = stat()
            XCTAssertEqual(lstat(tree.source + "/" + path, &original), 0)
            XCTAssertEqual(lstat(mounted + "/" + path, &shown), 0)
            XCTAssertEqual(shown.st_mode, original.st_mode, path)
            XCTAssertEqual(shown.st_rdev, original.st_rdev, path)
        }
        // Hard links: one inode, two names, nlink 2 on both.
        XCTAssertEqual(TreeFixture.inode(mounted + "/dir/hard-a"), TreeFixture.inode(mounted + "/hard-b"))
        XCTAssertNotEqual(TreeFixture.inode(mounted + "/dir/hard-a"), TreeFixture.inode(mounted + "/small.txt"))
        XCTAssertEqual(actual["hard-b"]?.links, 2)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: mounted + "/dangling"),
                       "/nonexistent/target")
        XCTAssertEqual(TreeFixture.xattrs(mounted + "/small.txt")["user.colour"], Array("blue".utf8))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: mounted + "/empty"), [])
        // The sparse file reports only its data as allocated.
        XCTAssertLessThan(TreeFixture.allocatedBytes(mounted + "/sparse.img"), 8 << 20)

        var filesystem = statvfs()
        XCTAssertEqual(statvfs(mounted, &filesystem), 0)
        XCTAssertNotEqual(filesystem.f_flag & UInt(ST_RDONLY), 0)

        // default_permissions and allow_other: another user is let in or refused by the kernel, by the modes.
        let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups", "/bin/cat"]
        let allowed = try Self.run("/usr/bin/setpriv", nobody + [mounted + "/small.txt"])
        XCTAssertEqual(allowed.status, 0, allowed.output)
        XCTAssertEqual(allowed.output, "hello convoy\n")
        let refused = try Self.run("/usr/bin/setpriv", nobody + [mounted + "/dir/sub/text.log"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.output.contains("Permission denied"), refused.output)

        try unmount(mount)
    }

    func testReadsAtAnyOffsetEqualTheSourceBytes() async throws {
        let random = TreeFixture.randomBytes(24 << 20, seed: 77)
        var sparse = [UInt8](repeating: 0, count: 16 << 20)
        let islands = [(3 << 20, TreeFixture.randomBytes(1 << 20, seed: 78)),
                       (9 << 20 + 12345, TreeFixture.randomBytes(700_000, seed: 79))]
        let tree = try await backUp("reads") { source in
            try TreeFixture.write(source + "/random.bin", random)
            let fd = open(source + "/sparse.img", O_WRONLY | O_CREAT, 0o644)
            for (offset, bytes) in islands {
                _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
                sparse.replaceSubrange(offset..<offset + bytes.count, with: bytes)
            }
            ftruncate(fd, off_t(sparse.count))
            close(fd)
        }
        let randomEntry = try tree.entry("random.bin")
        let sparseEntry = try tree.entry("sparse.img")
        XCTAssertGreaterThan(randomEntry.chunks?.count ?? 0, 4, "the file should span several blocks")
        XCTAssertLessThan(sparseEntry.chunks?.reduce(0) { $0 + Int($1.length) } ?? 0, 4 << 20, "holes are not stored")

        let mount = try mount(tree)
        var generator = SeededGenerator(seed: 5)
        for (name, expected, entry) in [("random.bin", random, randomEntry), ("sparse.img", sparse, sparseEntry)] {
            // Around every chunk boundary, at hole edges, at the end, and at random.
            var probes: [(offset: Int, length: Int)] = []
            for chunk in entry.chunks ?? [] {
                probes.append((max(0, Int(chunk.offset) - 5000), 10_000))
                probes.append((Int(chunk.offset + UInt64(chunk.length)) - 1, 2))
            }
            probes.append((expected.count - 100, 1000))
            for _ in 0..<60 {
                let offset = Int.random(in: 0..<expected.count, using: &generator)
                probes.append((offset, Int.random(in: 1...(3 << 20), using: &generator)))
            }

            // Holes and data where the source has them (SEEK_HOLE, SEEK_DATA).
            let source = open(tree.source + "/" + name, O_RDONLY)
            let mounted = open(mount.mountpoint + "/" + name, O_RDONLY)
            for offset in stride(from: off_t(0), to: off_t(expected.count + 4096), by: 256 << 10) {
                for whence: Int32 in [3, 4] {
                    XCTAssertEqual(lseek(mounted, offset, whence), lseek(source, offset, whence),
                                   "\(name): seek \(whence) from \(offset)")
                }
            }
            close(source)
            close(mounted)

            // Through the kernel (page-cache requests, page-aligned).
            let fd = open(mount.mountpoint + "/" + name, O_RDONLY)
            XCTAssertGreaterThanOrEqual(fd, 0)
            for probe in probes {
                var buffer = [UInt8](repeating: 0xAA, count: probe.length)
                let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(probe.offset)) }
                let want = expected[probe.offset..<min(expected.count, probe.offset + probe.length)]
                XCTAssertEqual(got, want.count, "\(name) at \(probe.offset)")
                XCTAssertTrue(Self.same(buffer[0..<max(0, got)], want),
                              "\(name) differs at \(probe.offset)+\(probe.length)")
            }
            close(fd)

            // Straight into the reader, at unaligned offsets the page cache never asks for.
            let tree = mount.filesystem.tree
            guard let node = tree.child(named: ByteString(name), of: tree.root) else {
                return XCTFail("no node for \(name)")
            }
            let file = OpenFile(node: node, path: name)
            for probe in probes {
                let pieces = try mount.filesystem.reader.read(file, count: probe.length, at: UInt64(probe.offset))
                let got = Self.joined(pieces)
                let want = expected[probe.offset..<min(expected.count, probe.offset + probe.length)]
                XCTAssertEqual(got.count, want.count)
                XCTAssertTrue(Self.same(got[...], want), "reader: \(name) differs at \(probe.offset)+\(probe.length)")
            }
        }
        try unmount(mount)
    }

    /// The bytes a read's pieces stand for, as the FUSE reply sends them.
    static func joined(_ pieces: [ReadPiece]) -> [UInt8] {
        let total = pieces.reduce(0) { $0 + $1.count }
        return [UInt8](unsafeUninitializedCapacity: total) { buffer, count in
            guard let base = buffer.baseAddress else { return }
            for piece in pieces {
                switch piece {
                case .zeros(let zeros): (base + count).initialize(repeating: 0, count: zeros)
                case .block(let block, let range):
                    block.withUnsafeBytes { bytes in
                        if let start = bytes.baseAddress {
                            UnsafeMutableRawPointer(base + count).copyMemory(from: start + range.lowerBound,
                                                                             byteCount: range.count)
                        }
                    }
                }
                count += piece.count
            }
        }
    }

    /// memcmp: a byte-by-byte comparison of megabytes is slow in a debug build.
    static func same(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in
                guard let left = x.baseAddress, let right = y.baseAddress else { return true }
                return memcmp(left, right, x.count) == 0
            }
        }
    }
}
