import CLinux
import ConvoyCore
import ConvoyTestSupport
@testable import Drivers
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `Filesystem.removeTree` deletes trees a container wrote (a deleted volume, a lazy volume's layers), as root.
/// Symlinks in them, planted before or swapped in while the removal runs, must never lead it outside the tree.
final class RemoveTreeTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "convoy-remove-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/host", withIntermediateDirectories: true)
        for index in 0..<20 {
            XCTAssertTrue(FileManager.default.createFile(atPath: root + "/host/f\(index)", contents: Data("host".utf8)))
        }
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    private var hostFiles: Int { (try? FileManager.default.contentsOfDirectory(atPath: root + "/host").count) ?? 0 }

    func testPlantedLinksAreRemovedNotFollowed() throws {
        let tree = root + "/tree"
        try FileManager.default.createDirectory(atPath: tree + "/d/e", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: tree + "/absolute", withDestinationPath: root + "/host")
        try FileManager.default.createSymbolicLink(atPath: tree + "/d/relative", withDestinationPath: "../../host")
        try FileManager.default.createSymbolicLink(atPath: tree + "/d/e/file", withDestinationPath: root + "/host/f0")
        try Filesystem.removeTree(tree)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tree))
        XCTAssertEqual(hostFiles, 20)
    }

    /// Names that are not UTF-8, and é composed and decomposed, are removed by their bytes (before, a lossy name
    /// was unlinked, nothing went, and the volume could not be deleted).
    func testNamesThatAreNotTextAreRemoved() throws {
        let tree = root + "/tree"
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        try ByteNameTree.populate(tree)
        XCTAssertEqual(try ByteNameTree.names(in: tree).count, 8)
        try Filesystem.removeTree(tree)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tree))
    }

    /// A directory swapped for a symlink to the host (atomically, over and over) while the tree is removed.
    func testADirectorySwappedForALinkDuringTheRemovalLeavesTheHostAlone() throws {
        for round in 0..<150 {
            let tree = root + "/tree\(round)"
            try FileManager.default.createDirectory(atPath: tree + "/d", withIntermediateDirectories: true)
            for index in 0..<40 {
                _ = FileManager.default.createFile(atPath: tree + "/d/f\(index)", contents: Data("volume".utf8))
            }
            try FileManager.default.createSymbolicLink(atPath: tree + "/swap", withDestinationPath: root + "/host")
            let stop = StopFlag()
            let swapper = Thread {
                while !stop.isSet { _ = convoy_exchange(tree + "/d", tree + "/swap") }
            }
            swapper.start()
            _ = try? Filesystem.removeTree(tree)
            stop.set()
            while swapper.isExecuting { usleep(1000) }
            try? Filesystem.removeTree(tree)
            XCTAssertEqual(hostFiles, 20, "round \(round): the removal followed the swapped-in link")
            if hostFiles != 20 { break }
        }
    }
}
