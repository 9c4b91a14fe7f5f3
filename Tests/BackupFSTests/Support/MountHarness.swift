@testable import BackupFS
import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import Synchronization
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The lines a mount logs.
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

/// A tree backed up into a directory store, ready to mount.
struct BackedUpTree {
    let scratch: String
    let source: String
    let storeRoot: String
    let repository: BackupRepository
    /// A test may change what the mount is given (e.g. a recorded checksum).
    var manifest: Manifest

    /// Where the store keeps a block (the layout of `BackupRepository`).
    func blockFile(_ hash: String) -> String {
        "\(storeRoot)/convoy-backupstore/blocks/\(hash.prefix(2))/\(hash)"
    }

    /// The chunks of `path` the store keeps as objects of their own (not packed): the ones a test can damage or
    /// remove through `blockFile`.
    func looseChunks(_ path: String) throws -> [Chunk] {
        try (entry(path).chunks ?? []).filter { FileManager.default.fileExists(atPath: blockFile($0.hash)) }
    }

    /// Removes every pack the store holds (the blocks packed in them are then missing).
    func removePacks() throws {
        let packs = "\(storeRoot)/convoy-backupstore/packs"
        if FileManager.default.fileExists(atPath: packs) { try FileManager.default.removeItem(atPath: packs) }
    }

    func entry(_ path: String) throws -> Entry {
        guard let entry = manifest.entries.first(where: { $0.path == ByteString(path) }) else {
            throw FixtureError("no entry \(path)")
        }
        return entry
    }
}

/// Base of the BackupFS tests: backs trees up, mounts them for real, and after each test checks that nothing it
/// mounted is still mounted.
class MountTestCase: XCTestCase {
    private var scratches: [String] = []
    private var mounts: [BackupMount] = []

    func backUp(_ label: String, build: (_ source: String) throws -> Void) async throws -> BackedUpTree {
        let scratch = try TreeFixture.temporaryDirectory("bfs-\(label)")
        scratches.append(scratch)
        let source = scratch + "/source"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try build(source)
        let storeRoot = scratch + "/store"
        let repository = BackupRepository(store: try FileObjectStore(root: storeRoot))
        let manifest = try await FileBackupWriter(repository: repository).backup(.init(
            source: source, volume: "vol-\(label)", backupID: "backup-\(label)", snapshot: nil, parent: nil,
            volumeSize: 0)).manifest
        return BackedUpTree(scratch: scratch, source: source, storeRoot: storeRoot, repository: repository,
                            manifest: manifest)
    }

    func mount(_ tree: BackedUpTree, at name: String = "mnt", options: BackupMountOptions = .init(),
               log: LogLines = LogLines()) throws -> BackupMount {
        let mountpoint = tree.scratch + "/" + name
        try FileManager.default.createDirectory(atPath: mountpoint, withIntermediateDirectories: true)
        let mount = try BackupMount.mount(manifest: tree.manifest, repository: tree.repository, at: mountpoint,
                                          options: options, log: { log.append($0) })
        mounts.append(mount)
        XCTAssertTrue(Self.isMounted(mountpoint), "\(mountpoint) is not in /proc/self/mounts")
        return mount
    }

    /// Unmounts and checks the mount is gone and its serving thread has ended.
    func unmount(_ mount: BackupMount, file: StaticString = #filePath, line: UInt = #line) throws {
        try mount.unmount()
        XCTAssertFalse(mount.isServing, "the serving thread still runs", file: file, line: line)
        XCTAssertFalse(Self.isMounted(mount.mountpoint), "\(mount.mountpoint) is still mounted", file: file, line: line)
    }

    override func tearDown() async throws {
        for mount in mounts {
            try? mount.unmount()
            XCTAssertFalse(Self.isMounted(mount.mountpoint), "\(mount.mountpoint) left mounted")
        }
        mounts.removeAll()
        for scratch in scratches { try? FileManager.default.removeItem(atPath: scratch) }
        scratches.removeAll()
        try await super.tearDown()
    }

    /// Whether /proc/self/mounts lists `path` as a mount point.
    static func isMounted(_ path: String) -> Bool {
        mountEntry(path) != nil
    }

    /// The fields of /proc/self/mounts' line for `path`: source, mount point, type, options.
    static func mountEntry(_ path: String) -> [String]? {
        let table = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        return table.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            .last { $0.count > 3 && $0[1] == path }
    }

    /// A file's whole content through read(2), or the errno that failed it.
    static func readAll(_ path: String, chunk: Int = 1 << 20) -> Result<[UInt8], POSIXError> {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return .failure(POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunk)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 { return .failure(POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)) }
            if count == 0 { return .success(bytes) }
            bytes.append(contentsOf: buffer[0..<count])
        }
    }

    /// Runs a program, returning its exit status and what it wrote.
    static func run(_ program: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}
