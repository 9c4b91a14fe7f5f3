@testable import Backupstore
import ConvoyCore
import XCTest

/// A file restore checks the whole manifest (ManifestRules, the same rules a mount applies) before it writes
/// anything; what it refuses here once failed half way, wrote outside a file's size, or trapped.
final class RestorePlanTests: XCTestCase {
    func entry(_ path: ByteString, _ type: Entry.Kind, size: UInt64 = 0, target: ByteString? = nil,
               chunks: [(UInt64, UInt32)]? = nil) -> Entry {
        var entry = Entry(path: path, type: type, mode: 0o644, uid: 0, gid: 0, mtimeSeconds: 0, mtimeNanoseconds: 0,
                          size: size)
        entry.target = target
        entry.chunks = chunks?.map { Chunk(hash: String(repeating: "ab", count: 32), offset: $0.0, length: $0.1) }
        return entry
    }

    func manifest(_ entries: [Entry]) -> Manifest {
        Manifest(id: "backup-1", volume: "vol", kind: .files, createdAt: "", snapshot: nil, parent: nil,
                 volumeSize: 0, entries: [entry("", .directory)] + entries, stats: .init())
    }

    func assertRefused(_ entries: [Entry], _ problem: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try FileRestorer.plan(manifest(entries)), file: file, line: line) { error in
            XCTAssertEqual((error as? ConvoyError)?.kind, .driverFailure, file: file, line: line)
            XCTAssertTrue("\(error)".contains(problem), "\(error) does not say \(problem)", file: file, line: line)
        }
    }

    func testAValidTreeIsPlannedInOrder() throws {
        let plan = try FileRestorer.plan(manifest([
            entry("d", .directory), entry("d/f", .file, size: 100, chunks: [(0, 10), (50, 50)]),
            entry("d/s", .symlink, target: "../anywhere"), entry("h", .hardlink, target: "d/f"),
        ]))
        XCTAssertEqual(plan.skeleton.map(\.path), ["", "d", "d/s"])
        XCTAssertEqual(plan.files.map(\.path), ["d/f"])
        XCTAssertEqual(plan.links.map(\.path), ["h"])
        XCTAssertEqual(plan.dataBytes, 60)
    }

    func testUnsafePathsAreRefused() {
        for path: ByteString in ["/abs", "../up", "a/../b", "a//b", "a/", "./a", "a/.", "nul\0/x", "a\0"] {
            assertRefused([entry("a", .directory), entry(path, .file)], "unsafe path")
        }
        assertRefused([entry("x", .hardlink, target: "/etc/passwd")], "unsafe path '/etc/passwd'")
    }

    func testEntriesOutsideRestoredDirectoriesOrTwiceAreRefused() {
        assertRefused([entry("missing/f", .file)], "places 'missing/f' under 'missing'")
        assertRefused([entry("l", .symlink, target: "/"), entry("l/f", .file)], "which is not a directory it restored")
        assertRefused([entry("d", .directory), entry("d", .directory)], "two entries at 'd'")
        assertRefused([entry("", .directory)], "two entries at ''")
        XCTAssertThrowsError(try FileRestorer.plan(Manifest(
            id: "b", volume: "v", kind: .files, createdAt: "", snapshot: nil, parent: nil, volumeSize: 0,
            entries: [entry("", .file)], stats: .init()))) { error in
            XCTAssertTrue("\(error)".contains("a root that is no directory"), "\(error)")
        }
    }

    func testHardLinksMustNameAFileOfTheManifest() {
        assertRefused([entry("h", .hardlink, target: "nothing")], "a hard link 'h' to 'nothing', which is not a file")
        assertRefused([entry("d", .directory), entry("h", .hardlink, target: "d")], "which is not a file in it")
        assertRefused([entry("s", .symlink, target: "/etc/passwd"), entry("h", .hardlink, target: "s")],
                      "a hard link 'h' to 's'")
    }

    /// offset + length overflowed (trap) and off_t(offset) trapped past Int64.max; chunks out of order, empty or
    /// past the end were written where the size then cut them, or over each other.
    func testChunksMustBeInOrderApartAndInsideTheFile() {
        assertRefused([entry("f", .file, size: 10, chunks: [(UInt64.max, 1)])], "chunks past the end of 'f'")
        assertRefused([entry("f", .file, size: UInt64.max, chunks: [(0, 1)])],
                      "an impossible size 18446744073709551615 of 'f'")
        assertRefused([entry("f", .file, size: 100, chunks: [(0, 10), (5, 10)])], "overlapping chunks in 'f'")
        assertRefused([entry("f", .file, size: 100, chunks: [(20, 10), (0, 10)])], "overlapping chunks in 'f'")
        assertRefused([entry("f", .file, size: 100, chunks: [(0, 0)])], "an empty chunk in 'f'")
        assertRefused([entry("f", .file, size: 15, chunks: [(0, 10), (10, 10)])], "chunks past the end of 'f'")
    }

    func testRulesQuoteLongPathsShort() {
        let long = String(repeating: "x", count: 5000)
        XCTAssertEqual(ManifestRules.pathProblem(ByteString(long)), nil)
        XCTAssertLessThan(ManifestRules.pathProblem(ByteString("/" + long))?.count ?? 0, 150)
        XCTAssertEqual(ManifestRules.split("a/b/c").parent, "a/b")
        XCTAssertEqual(ManifestRules.split("a/b/c").name, "c")
        XCTAssertEqual(ManifestRules.split("c").parent, "")
    }
}
