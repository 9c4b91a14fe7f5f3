@testable import BackupFS
import Backupstore
import ConvoyTestSupport
import Foundation
import XCTest

/// A mounted backup shows names, link targets and xattr names as the bytes the source held: names that are not
/// UTF-8 can be listed and opened, and é composed and decomposed are two entries with their own content.
final class ByteNameMountTests: MountTestCase {
    func testAMountedBackupShowsEveryNameWithItsBytes() async throws {
        let tree = try await backUp("bytes") { source in try ByteNameTree.populate(source) }
        let mount = try mount(tree)
        XCTAssertEqual(try ByteNameTree.describe(mount.mountpoint), try ByteNameTree.describe(tree.source))
        try unmount(mount)
    }
}
