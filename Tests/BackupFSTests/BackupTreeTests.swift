@testable import BackupFS
import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest

/// A manifest whose entries do not fit together is refused at mount, naming the problem, rather than served.
final class BackupTreeTests: MountTestCase {
    func testInconsistentManifestsAreRefused() async throws {
        let tree = try await backUp("index") { source in
            try FileManager.default.createDirectory(atPath: source + "/dir", withIntermediateDirectories: true)
            try TreeFixture.write(source + "/dir/f.bin", TreeFixture.randomBytes(2 << 20, seed: 71))
        }
        let file = try XCTUnwrap(tree.manifest.entries.firstIndex { $0.path == "dir/f.bin" })
        XCTAssertGreaterThan(tree.manifest.entries[file].chunks?.count ?? 0, 1)

        var cases: [(String, Manifest)] = []
        var overlapping = tree.manifest
        overlapping.entries[file].chunks?[1].offset -= 1
        cases.append(("overlapping chunks in 'dir/f.bin'", overlapping))
        var pastEnd = tree.manifest
        pastEnd.entries[file].size -= 1
        cases.append(("chunks past the end of 'dir/f.bin'", pastEnd))
        var orphan = tree.manifest
        orphan.entries[file].path = "nowhere/f.bin"
        cases.append(("places 'nowhere/f.bin' outside its directories", orphan))
        var twice = tree.manifest
        twice.entries.append(tree.manifest.entries[file])
        cases.append(("lists 'dir/f.bin' twice", twice))
        var dangling = tree.manifest
        var link = Entry(path: "dir/link", type: .hardlink, mode: 0o644, uid: 0, gid: 0, mtimeSeconds: 0,
                         mtimeNanoseconds: 0, size: 0)
        link.target = "dir/missing"
        dangling.entries.append(link)
        cases.append(("links 'dir/link' to 'dir/missing'", dangling))
        var rootless = tree.manifest
        rootless.entries.removeFirst()
        cases.append(("has no root directory", rootless))

        let mountpoint = tree.scratch + "/mnt"
        try FileManager.default.createDirectory(atPath: mountpoint, withIntermediateDirectories: true)
        for (problem, manifest) in cases {
            XCTAssertThrowsError(try BackupMount.mount(manifest: manifest, repository: tree.repository, at: mountpoint,
                                                       log: { _ in })) { error in
                XCTAssertEqual((error as? ConvoyError)?.kind, .driverFailure)
                XCTAssertTrue("\(error)".contains(problem), "\(error) does not say \(problem)")
            }
            XCTAssertFalse(Self.isMounted(mountpoint))
        }
        XCTAssertNoThrow(try BackupTree(tree.manifest))
    }

    func testMountPointMustBeAnEmptyDirectory() async throws {
        let tree = try await backUp("mountpoint") { source in try TreeFixture.write(source + "/f", [1]) }
        for (path, kind) in [(tree.scratch + "/absent", ConvoyError.Kind.notFound),
                             (tree.source + "/f", .invalidArgument), (tree.source, .conflict)] {
            XCTAssertThrowsError(try BackupMount.mount(manifest: tree.manifest, repository: tree.repository, at: path,
                                                       log: { _ in })) { error in
                XCTAssertEqual((error as? ConvoyError)?.kind, kind, "\(path): \(error)")
            }
            XCTAssertFalse(Self.isMounted(path))
        }
    }
}
