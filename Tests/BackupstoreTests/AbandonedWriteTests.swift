import Backupstore
import ConvoyTestSupport
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A `vfs:///srv` store lives in a directory that holds other things too. Collecting what dead writers left
/// must touch only the store's own temporary files: never a user's file that happens to have `.tmp-` in its
/// name, and never anything behind a mount point.
final class AbandonedWriteTests: XCTestCase {
    private func file(_ path: String, old: Bool = true) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try TreeFixture.write(path, Array("data".utf8))
        if old {
            var times = [timespec(tv_sec: 978_307_200, tv_nsec: 0), timespec(tv_sec: 978_307_200, tv_nsec: 0)]
            XCTAssertEqual(utimensat(AT_FDCWD, path, &times, 0), 0)
        }
    }

    func testOnlyTheStoresOwnTemporaryFilesGo() async throws {
        let directory = try TreeFixture.temporaryDirectory("abandoned")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try FileObjectStore(root: directory)
        let own = directory + "/convoy-backupstore/blocks/ab/abcdef.tmp-somehost_4242-1f2e3d"
        let fresh = directory + "/convoy-backupstore/blocks/ab/abcdef.tmp-somehost_4242-9a9a"
        let users = [directory + "/notes.tmp-1", directory + "/photos/x.tmp-somehost_4242-1f2e3d",
                     directory + "/convoy-backupstore/readme.tmp-draft"]
        try file(own)
        try file(fresh, old: false)
        for path in users { try file(path) }
        // A filesystem mounted inside the store's tree is not the store's.
        let mounted = directory + "/convoy-backupstore/mnt"
        try FileManager.default.createDirectory(atPath: mounted, withIntermediateDirectories: true)
        XCTAssertEqual(mount("tmpfs", mounted, "tmpfs", 0, nil), 0)
        defer { umount2(mounted, Int32(MNT_DETACH)) }
        let behindMount = mounted + "/abcdef.tmp-somehost_4242-77"
        try file(behindMount)

        let removed = try await store.removeAbandonedWrites(under: "convoy-backupstore/", olderThan: 3600)
        XCTAssertEqual(removed, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: own), "the store's old temporary file goes")
        XCTAssertTrue(FileManager.default.fileExists(atPath: fresh), "a recent one may be a live writer's")
        for path in users + [behindMount] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: path), "\(path) is not the store's")
        }
    }
}
