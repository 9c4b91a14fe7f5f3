@testable import Backupstore
import CLinux
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A snapshot reads a tree its container keeps changing. Directories swapped for symlinks to the host must never
/// bring host files into a backup; entries that vanish or move are left out by name, and the snapshot completes.
/// The races run for `CONVOY_RACE_SECONDS` each (3 by default; bench/RELIABILITY.md records 60).
final class BusyTreeTests: XCTestCase {
    var root = ""
    var raceSeconds: Double { Double(ProcessInfo.processInfo.environment["CONVOY_RACE_SECONDS"] ?? "") ?? 3 }

    override func setUpWithError() throws {
        root = try TreeFixture.temporaryDirectory("busy")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    private func backup(_ source: String, id: String, store: String) async throws -> FileBackupWriter.Outcome {
        let repository = BackupRepository(store: try FileObjectStore(root: store))
        return try await FileBackupWriter(repository: repository).backup(.init(
            source: source, volume: "busy", backupID: id, snapshot: nil, parent: nil, volumeSize: 0))
    }

    /// `d` and a symlink to a host directory trade places atomically, over and over, while backups run.
    func testADirectorySwappedForAHostLinkNeverBringsHostBytesIn() async throws {
        let tree = root + "/tree"
        try FileManager.default.createDirectory(atPath: tree + "/d", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/host", withIntermediateDirectories: true)
        let secret = TreeFixture.randomBytes(4096, seed: 77)
        let secretHash = secret.withUnsafeBytes { BlockCodec.hash($0) }
        try TreeFixture.write(root + "/host/shared", secret)
        try TreeFixture.write(root + "/host/host-only", secret)
        try TreeFixture.write(tree + "/d/shared", Array("volume".utf8))
        for index in 0..<40 { try TreeFixture.write(tree + "/d/f\(index)", Array("volume \(index)".utf8)) }
        try FileManager.default.createSymbolicLink(atPath: tree + "/swap", withDestinationPath: root + "/host")

        let stop = StopFlag()
        let swapper = Thread { while !stop.isSet { _ = convoy_exchange(tree + "/d", tree + "/swap") } }
        swapper.start()
        defer { stop.set() }
        let deadline = Date().addingTimeInterval(raceSeconds)
        var rounds = 0
        var skipped = 0
        while Date() < deadline || rounds < 20 {
            let outcome = try await backup(tree, id: "backup-swap\(rounds)", store: root + "/store")
            skipped += outcome.skippedCount
            for entry in outcome.manifest.entries {
                XCTAssertFalse(entry.path.description.hasSuffix("host-only"),
                               "round \(rounds): a host file's name is in the backup")
                XCTAssertFalse(entry.chunks?.contains { $0.hash == secretHash } ?? false,
                               "round \(rounds): host bytes are in the backup as \(entry.path)")
            }
            rounds += 1
        }
        stop.set()
        print("symlink swap during backup: \(rounds) backups in \(raceSeconds) s, \(skipped) entries left out, "
              + "0 host entries")
    }

    /// An application renames a directory every millisecond or so; every snapshot still completes, leaves out
    /// only what moved (saying so), and holds the untouched part of the tree whole.
    func testADirectoryRenamedDuringTheScanIsLeftOutNotFatal() async throws {
        let tree = root + "/tree"
        try FileManager.default.createDirectory(atPath: tree + "/d", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: tree + "/stable", withIntermediateDirectories: true)
        for index in 0..<200 {
            try TreeFixture.write(tree + String(format: "/d/f%03d", index), Array("moving \(index)".utf8))
        }
        for index in 0..<50 {
            try TreeFixture.write(tree + String(format: "/stable/s%03d", index), Array("stable \(index)".utf8))
        }
        let stop = StopFlag.renaming(tree + "/d", to: ".real", pause: 500)
        defer { stop.set() }
        let deadline = Date().addingTimeInterval(raceSeconds)
        var rounds = 0
        var leftOut = 0
        var last: Manifest?
        while Date() < deadline || rounds < 20 {
            let outcome = try await backup(tree, id: "backup-rename\(rounds)", store: root + "/store")
            let paths = Set(outcome.manifest.entries.map(\.path.description))
            for path in paths where path.contains("/") {
                let parent = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
                XCTAssertTrue(paths.contains(parent), "round \(rounds): \(path) is in the backup without its parent")
            }
            for index in 0..<50 {
                XCTAssertTrue(paths.contains(String(format: "stable/s%03d", index)), "round \(rounds)")
            }
            leftOut += outcome.skippedCount
            for entry in outcome.skipped {
                XCTAssertTrue(entry.path.hasPrefix("d"), "\(entry) should not be left out")
            }
            last = outcome.manifest
            rounds += 1
        }
        stop.set()
        XCTAssertGreaterThan(leftOut, 0, "in \(rounds) snapshots of a directory renamed every millisecond, nothing "
                             + "was ever seen to move: the race was not exercised")
        print("directory renamed every ms during backup: \(rounds) backups, all complete, \(leftOut) entries left out")

        let restored = root + "/restored"
        try FileManager.default.createDirectory(atPath: restored, withIntermediateDirectories: true)
        let repository = BackupRepository(store: try FileObjectStore(root: root + "/store"))
        try await FileRestorer(repository: repository).restore(try XCTUnwrap(last), into: restored)
        for index in 0..<50 {
            let bytes = FileManager.default.contents(atPath: restored + String(format: "/stable/s%03d", index))
            XCTAssertEqual(bytes, Data("stable \(index)".utf8))
        }
    }

    /// Between the scan and the read, a file can go, be replaced, or sit behind a component that became a
    /// symlink or a FIFO: the read refuses each (without blocking) instead of reading something else.
    func testAFileIsOpenedOnlyIfItIsStillTheScannedOne() throws {
        let tree = root + "/tree"
        try FileManager.default.createDirectory(atPath: tree + "/d", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/host", withIntermediateDirectories: true)
        try TreeFixture.write(root + "/host/f", Array("host".utf8))
        for name in ["same", "replaced", "fifo", "gone"] { try TreeFixture.write(tree + "/d/" + name, [1, 2, 3]) }
        let scanned = try TreeScanner(root: tree).scan().entries
        func inode(_ path: ByteString) throws -> UInt64? { try XCTUnwrap(scanned.first { $0.path == path }).inode }
        let directory = try DirectoryDescriptor.open(tree)

        guard case .file(let same) = try SourceFile.open("d/same", in: directory, size: 3, inode: inode("d/same"))
        else { return XCTFail("the unchanged file was not opened") }
        same.close()
        try TreeFixture.write(tree + "/d/replaced.new", [4, 5, 6])
        XCTAssertEqual(rename(tree + "/d/replaced.new", tree + "/d/replaced"), 0)
        XCTAssertEqual(unlink(tree + "/d/fifo"), 0)
        XCTAssertEqual(mkfifo(tree + "/d/fifo", 0o644), 0)
        XCTAssertEqual(unlink(tree + "/d/gone"), 0)
        for path: ByteString in ["d/replaced", "d/fifo", "d/gone"] {
            guard case .gone = try SourceFile.open(path, in: directory, size: 3, inode: inode(path)) else {
                return XCTFail("\(path) was opened although it is no longer the scanned file")
            }
        }
        try FileManager.default.moveItem(atPath: tree + "/d", toPath: tree + "/d.moved")
        try FileManager.default.createSymbolicLink(atPath: tree + "/d", withDestinationPath: root + "/host")
        try TreeFixture.write(root + "/host/same", Array("host".utf8))
        guard case .gone = try SourceFile.open("d/same", in: directory, size: 3, inode: nil) else {
            return XCTFail("a file was opened through a symlink")
        }
    }
}
