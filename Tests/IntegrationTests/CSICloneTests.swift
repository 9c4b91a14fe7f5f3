import CSIProtocol
import ConvoyCore
import ConvoyTestSupport
import Foundation
import GRPCCore
import XCTest

/// CreateVolume with another volume as its content source (CLONE_VOLUME): the clone holds the source's bytes as
/// they were when it was made, read through a real published mount, and goes its own way after (writes to
/// either do not reach the other); the snapshot it was cut through is gone; a missing source, a smaller size and
/// a lazy clone are refused with the spec's codes. On the vfs driver here; the devicemapper clone (thin blocks
/// copied) is in `CSIDevicemapperTests`.
final class CSICloneTests: CSIDaemonTestCase {

    static let files: [String: [UInt8]] = [
        "a.txt": Array("cloned through CSI\n".utf8),
        "data/big.bin": TreeFixture.randomBytes(5 << 20, seed: 31),
        "data/deep/er/small.bin": TreeFixture.randomBytes(777, seed: 32),
    ]

    private func read(_ path: String) -> [UInt8]? {
        (try? Data(contentsOf: URL(fileURLWithPath: path))).map(Array.init)
    }

    func testACloneHoldsTheSourceAsItWasAndGoesItsOwnWay() async throws {
        let pods = daemon.directory + "/kubelet/pods"
        try await withCSIClient(socket) { client in
            let steps = CSISteps(client)
            try await steps.create("pvc-origin", bytes: 256 << 20)
            try await steps.stageAndPublish("pvc-origin", at: pods + "/origin")
            for (path, bytes) in Self.files {
                try FileManager.default.createDirectory(
                    atPath: (pods + "/origin/" + path as NSString).deletingLastPathComponent,
                    withIntermediateDirectories: true)
                try TreeFixture.write(pods + "/origin/" + path, bytes)
            }
            try FileManager.default.createSymbolicLink(atPath: pods + "/origin/link", withDestinationPath: "a.txt")

            let clone = try await steps.create("pvc-clone", cloneOf: "pvc-origin")
            XCTAssertEqual(clone.contentSource.volume.volumeID, "pvc-origin")
            XCTAssertEqual(clone.capacityBytes, 256 << 20, "a clone without a size must get its source's")
            let again = try await steps.create("pvc-clone", cloneOf: "pvc-origin")
            XCTAssertEqual(again.volumeID, clone.volumeID, "a repeated clone made another volume")
            // The name is taken by a clone of pvc-origin: any other content source (or none) does not match it.
            let plain = await csiStatus { try await steps.create("pvc-clone") }
            XCTAssertEqual(plain, .alreadyExists, "a clone was returned for a create without a content source")
            let otherSource = await csiStatus { try await steps.create("pvc-clone", cloneOf: "pvc-elsewhere") }
            XCTAssertEqual(otherSource, .alreadyExists, "a clone was returned for a clone of another volume")
            let fromSnapshot = await csiStatus {
                try await steps.create("pvc-clone", fromSnapshot: "vfs:///srv/store?backup=backup-1&volume=v")
            }
            XCTAssertEqual(fromSnapshot, .alreadyExists, "a clone was returned for a restore")

            // Both change after the clone: neither sees the other's change.
            try TreeFixture.write(pods + "/origin/a.txt", Array("changed in the origin\n".utf8))
            try await steps.stageAndPublish("pvc-clone", at: pods + "/clone")
            XCTAssertTrue(MountInfo.isMountPoint(pods + "/clone"), "the clone is not mounted")
            for (path, bytes) in Self.files {
                XCTAssertEqual(read(pods + "/clone/" + path), bytes, "the clone's \(path) differs from the source's")
            }
            XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: pods + "/clone/link"), "a.txt")
            try TreeFixture.write(pods + "/clone/only-in-clone", [1, 2, 3])
            XCTAssertFalse(FileManager.default.fileExists(atPath: pods + "/origin/only-in-clone"))
            XCTAssertEqual(read(pods + "/origin/a.txt"), Array("changed in the origin\n".utf8))

            let larger = try await steps.create("pvc-larger", cloneOf: "pvc-origin", bytes: 512 << 20)
            XCTAssertEqual(larger.capacityBytes, 512 << 20)
            let smaller = await csiStatus { try await steps.create("pvc-small", cloneOf: "pvc-origin", bytes: 1 << 20) }
            XCTAssertEqual(smaller, .outOfRange, "a clone smaller than its source must be OUT_OF_RANGE")
            let missing = await csiStatus { try await steps.create("pvc-none", cloneOf: "pvc-missing") }
            XCTAssertEqual(missing, .notFound)
            let lazy = await csiStatus {
                try await steps.create("pvc-lazy", parameters: ["lazy": "true"], cloneOf: "pvc-origin")
            }
            XCTAssertEqual(lazy, .invalidArgument)

            // The source was only held while it was cloned: it deletes once unpublished.
            try await steps.unpublishAndUnstage("pvc-origin", at: pods + "/origin")
            try await steps.delete("pvc-origin")
            XCTAssertEqual(read(pods + "/clone/data/big.bin"), Self.files["data/big.bin"],
                           "deleting the source changed its clone")
            try await steps.unpublishAndUnstage("pvc-clone", at: pods + "/clone")
        }
        let listed = try daemon.cli(["list"]).stdout
        for name in ["pvc-clone", "pvc-larger"] { XCTAssertTrue(listed.contains(name), listed) }
        for name in ["pvc-small", "pvc-none", "pvc-lazy"] { XCTAssertFalse(listed.contains(name), listed) }
        let snapshots = try daemon.cli(["snapshot", "list"]).stdout
        XCTAssertFalse(snapshots.contains("clone-"), "the snapshot a clone was cut through is left: \(snapshots)")
    }
}
