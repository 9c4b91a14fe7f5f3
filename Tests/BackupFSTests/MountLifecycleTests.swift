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

/// Read-only, unmounting (also while busy), and mounts left behind by a daemon that died.
final class MountLifecycleTests: MountTestCase {
    func testWritesAreRefusedWithEROFS() async throws {
        let tree = try await backUp("readonly") { source in
            try TreeFixture.write(source + "/f.txt", Array("unchanged\n".utf8))
            try FileManager.default.createDirectory(atPath: source + "/d", withIntermediateDirectories: true)
        }
        let mount = try mount(tree)
        let root = mount.mountpoint
        let value = Array("x".utf8)
        let attempts: [(String, () -> Int32)] = [
            ("open for writing", { open(root + "/f.txt", O_WRONLY) }),
            ("open for reading and writing", { open(root + "/f.txt", O_RDWR) }),
            ("create", { open(root + "/new", O_WRONLY | O_CREAT, 0o644) }),
            ("truncate", { truncate(root + "/f.txt", 0) }),
            ("mkdir", { mkdir(root + "/d2", 0o755) }),
            ("unlink", { unlink(root + "/f.txt") }),
            ("rmdir", { rmdir(root + "/d") }),
            ("rename", { rename(root + "/f.txt", root + "/g.txt") }),
            ("symlink", { symlink("f.txt", root + "/l") }),
            ("link", { link(root + "/f.txt", root + "/h") }),
            ("chmod", { chmod(root + "/f.txt", 0o777) }),
            ("chown", { chown(root + "/f.txt", 1, 1) }),
            ("setxattr", { convoy_lsetxattr(root + "/f.txt", "user.x", value, value.count) }),
            ("utimes", { utimensat(AT_FDCWD, root + "/f.txt", nil, 0) }),
        ]
        for (what, attempt) in attempts {
            errno = 0
            XCTAssertEqual(attempt(), -1, what)
            XCTAssertEqual(errno, EROFS, "\(what): \(String(cString: strerror(errno)))")
        }
        XCTAssertEqual(try Self.readAll(root + "/f.txt").get(), Array("unchanged\n".utf8))
        try unmount(mount)
    }

    func testUnmountWhileAFileIsOpenEndsTheServingThread() async throws {
        let tree = try await backUp("busy") { source in
            try TreeFixture.write(source + "/big.bin", TreeFixture.randomBytes(16 << 20, seed: 41))
        }
        let mount = try mount(tree, options: .init(readAheadBlocks: 0))
        let fd = open(mount.mountpoint + "/big.bin", O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        var buffer = [UInt8](repeating: 0, count: 4096)
        XCTAssertEqual(buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }, 4096)

        // A plain unmount would fail with EBUSY; this one detaches and stops serving.
        let started = ContinuousClock.now
        try unmount(mount)
        print("unmount with an open file took \(ContinuousClock.now - started)")
        // The open file reaches no daemon any more: what the page cache lacks cannot be read.
        errno = 0
        XCTAssertEqual(buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 12 << 20) }, -1)
        XCTAssertTrue([ENOTCONN, ECONNABORTED].contains(errno), String(cString: strerror(errno)))
        close(fd)
        XCTAssertNoThrow(try mount.unmount(), "unmount is idempotent")
    }

    func testUnmountDuringAFetchWaitsForItAndFailsTheRead() async throws {
        let tree = try await backUp("inflight") { source in
            try TreeFixture.write(source + "/f.bin", TreeFixture.randomBytes(1 << 20, seed: 42))
        }
        let delay = 1.0
        let mount = try mount(tree, options: .init(fetchDelay: delay))
        let path = mount.mountpoint + "/f.bin"
        let readResult = Delivery<Int32>()
        Thread {
            let fd = open(path, O_RDONLY)
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            readResult.deliver(count < 0 ? errno : 0)
            close(fd)
        }.start()
        try await Task.sleep(for: .seconds(delay / 4))  // the read is now waiting on its block
        let started = ContinuousClock.now
        try unmount(mount)
        let elapsed = ContinuousClock.now - started
        print("unmount during a fetch took \(elapsed)")
        XCTAssertLessThan(elapsed, .seconds(delay * 3))
        let error = try XCTUnwrap(readResult.wait(timeout: .now() + 10))
        XCTAssertTrue([ECONNABORTED, ENOTCONN].contains(error), "the read ended with \(error)")
    }

    func testDeadMountIsRecognisedAndDetached() async throws {
        let tree = try await backUp("dead") { source in
            try TreeFixture.write(source + "/f.txt", Array("alive\n".utf8))
        }
        let dead = tree.scratch + "/dead"
        try FileManager.default.createDirectory(atPath: dead, withIntermediateDirectories: true)
        try Self.makeDeadMount(at: dead)
        XCTAssertTrue(Self.isMounted(dead))
        var info = stat()
        XCTAssertEqual(stat(dead, &info), -1)
        XCTAssertEqual(errno, ENOTCONN)
        XCTAssertTrue(BackupMount.isDeadMount(dead))
        XCTAssertTrue(BackupMount.isDeadMount(dead + "/"), "a trailing slash names the same mount point")

        // Mounting over it is refused, saying what to do.
        XCTAssertThrowsError(try BackupMount.mount(manifest: tree.manifest, repository: tree.repository, at: dead,
                                                   log: { _ in })) { error in
            XCTAssertEqual((error as? ConvoyError)?.kind, .conflict)
            XCTAssertTrue("\(error)".contains("detach it"), "\(error)")
        }
        XCTAssertTrue(BackupMount.detach(dead))
        XCTAssertFalse(Self.isMounted(dead))
        XCTAssertFalse(BackupMount.isDeadMount(dead))
        XCTAssertFalse(BackupMount.detach(dead), "nothing is mounted there any more")

        // Neither a live mount nor a plain directory is dead.
        let live = try mount(tree, at: "dead")
        XCTAssertFalse(BackupMount.isDeadMount(live.mountpoint))
        XCTAssertFalse(BackupMount.isDeadMount(tree.source))
        XCTAssertFalse(BackupMount.isDeadMount(tree.scratch + "/nonexistent"))
        XCTAssertEqual(try Self.readAll(live.mountpoint + "/f.txt").get(), Array("alive\n".utf8))
        try unmount(live)
    }

    /// What a FUSE daemon killed with SIGKILL leaves: a mount whose /dev/fuse end was closed. Made in-process by
    /// mounting a FUSE connection by hand (mount(2) with the device's fd) and closing the fd at once.
    static func makeDeadMount(at path: String) throws {
        let fd = open("/dev/fuse", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw FixtureError("cannot open /dev/fuse: \(errno)") }
        let options = "fd=\(fd),rootmode=40000,user_id=0,group_id=0"
        let result = Glibc.mount("convoy-dead", path, "fuse", UInt(MS_NOSUID | MS_NODEV), options)
        let code = errno
        close(fd)
        guard result == 0 else { throw FixtureError("mount(2) of a FUSE connection failed: \(code)") }
    }
}
