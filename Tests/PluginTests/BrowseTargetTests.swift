import ConvoyCore
import Foundation
@testable import Plugin
import XCTest

/// Issue 18, "Who may do what": `backup mount` mounts only at or under a browse root, judged with the target's
/// links, `.` and `..` resolved and by path component. Checked without mounting anything.
final class BrowseTargetTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "convoy-browse-\(UUID().uuidString)"
        for path in ["/roots/browse/a/b", "/outside", "/roots/browse-other"] {
            try FileManager.default.createDirectory(atPath: directory + path, withIntermediateDirectories: true)
        }
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// What `BackupBrowser.mount` does first with the directory a client names.
    private func check(_ targets: BrowseTargets, _ requested: String) throws {
        try targets.check(try BackupBrowser.mountpoint(requested), requested: requested)
    }

    func testTargetsOutsideTheRootsAreRefusedWithTheirLinksResolved() throws {
        let root = directory + "/roots/browse"
        try FileManager.default.createSymbolicLink(atPath: root + "/link", withDestinationPath: directory + "/outside")
        try FileManager.default.createSymbolicLink(atPath: root + "/relative", withDestinationPath: "../../outside")
        let targets = try BrowseTargets(roots: [root], allowsAny: false)

        for inside in [root, root + "/a", root + "/a/b", root + "/a/../a/b", root + "/"] {
            XCTAssertNoThrow(try check(targets, inside), inside)
        }
        for outside in [directory + "/outside", directory + "/roots/browse-other", directory + "/roots",
                        root + "/link", root + "/relative", root + "/../../outside", root + "/a/../../browse-other"] {
            XCTAssertThrowsError(try check(targets, outside), outside) { thrown in
                let error = thrown as? ConvoyError
                XCTAssertEqual(error?.kind, .invalidArgument)
                let message = error?.message ?? ""
                XCTAssertTrue(message.contains("is outside the directories backups are mounted in on this daemon ("
                    + root + ")"), message)
                XCTAssertTrue(message.contains("--browse-root DIR (repeatable) or --allow-any-browse-target"), message)
            }
        }
        do {
            try check(targets, root + "/link")
            XCTFail("a link out of the root is refused")
        } catch {
            let message = (error as? ConvoyError)?.message ?? "\(error)"
            XCTAssertTrue(message.hasPrefix("\(directory)/outside (\(root)/link with its links resolved) is outside"),
                          message)
        }

        let anywhere = try BrowseTargets(roots: [root], allowsAny: true)
        XCTAssertNoThrow(try check(anywhere, directory + "/outside"))
        XCTAssertNoThrow(try check(anywhere, root + "/link"))
    }

    func testRootsAreResolvedTooAndMustBeAbsolute() throws {
        // A root given through a link holds what lies under the link's target.
        try FileManager.default.createSymbolicLink(atPath: directory + "/via",
                                                   withDestinationPath: directory + "/roots")
        let targets = try BrowseTargets(roots: [directory + "/via/", "/nonexistent-browse-root"], allowsAny: false)
        XCTAssertEqual(targets.roots, [directory + "/via", "/nonexistent-browse-root"])
        XCTAssertNoThrow(try check(targets, directory + "/roots/browse/a"))
        XCTAssertThrowsError(try check(targets, directory + "/outside"))

        for bad in ["relative/dir", "/mnt/../etc", ""] {
            XCTAssertThrowsError(try BrowseTargets(roots: [bad], allowsAny: false), bad) {
                XCTAssertTrue(($0 as? ConvoyError)?.message.hasPrefix("--browse-root: ") == true, "\($0)")
            }
        }
    }

    func testTheDefaultRootsRefuseSystemDirectories() throws {
        let roots = BrowseTargets.defaultRoots(daemonRoot: directory + "/roots")
        XCTAssertEqual(roots, ["/mnt", "/media", "/run/convoy/browse", directory + "/roots/browse"])
        let targets = try BrowseTargets(roots: roots, allowsAny: false)
        XCTAssertNoThrow(try check(targets, directory + "/roots/browse/a"))
        for system in ["/etc", "/root", "/", NSTemporaryDirectory(), directory + "/outside"] {
            XCTAssertThrowsError(try check(targets, system), system)
        }
    }
}
