import CLinux
import ConvoyCore
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

    /// A directory swapped for a symlink to the host (atomically, over and over) while the tree is removed.
    func testADirectorySwappedForALinkDuringTheRemovalLeavesTheHostAlone() throws {
        let stop = Atomic(false)
        for round in 0..<150 {
            let tree = root + "/tree\(round)"
            try FileManager.default.createDirectory(atPath: tree + "/d", withIntermediateDirectories: true)
            for index in 0..<40 {
                FileManager.default.createFile(atPath: tree + "/d/f\(index)", contents: Data("volume".utf8))
            }
            try FileManager.default.createSymbolicLink(atPath: tree + "/swap", withDestinationPath: root + "/host")
            stop.store(false)
            let swapper = Thread {
                while !stop.load() { _ = convoy_exchange(tree + "/d", tree + "/swap") }
            }
            swapper.start()
            _ = try? Filesystem.removeTree(tree)
            stop.store(true)
            while swapper.isExecuting { usleep(1000) }
            try? Filesystem.removeTree(tree)
            XCTAssertEqual(hostFiles, 20, "round \(round): the removal followed the swapped-in link")
            if hostFiles != 20 { break }
        }
    }
}

/// A flag shared with the swapping thread.
private final class Atomic: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Bool
    init(_ value: Bool) { self.value = value }
    func load() -> Bool { lock.withLock { value } }
    func store(_ new: Bool) { lock.withLock { value = new } }
}
