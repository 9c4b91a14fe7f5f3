import CSIProtocol
import ConvoyCore
import Foundation
import GRPCCore
import XCTest

/// CSI over the ebs driver, against moto's EC2 and the attach emulator: a volume made in the node's zone (its
/// topology), staged (attached, formatted, mounted), written through a published target, snapshotted as an
/// EBS snapshot (`ebs://` destination), and restored from it into a new EBS volume with the same bytes.
final class CSIEBSTests: EBSDaemonTestCase {
    override var servesCSI: Bool { true }
    override var volumeSuffixes: [String] { ["src", "copy"] }

    func testLifeCycleWithAnEBSSnapshotAndARestore() async throws {
        let (source, copy) = (prefix + "src", prefix + "copy")
        let pods = daemon.directory + "/kubelet/pods"
        let bytes = (0..<700_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        try await withCSIClient(csiSocket) { client in
            let steps = CSISteps(client)
            let node = try await steps.node.nodeGetInfo(Csi_V1_NodeGetInfoRequest())
            XCTAssertEqual(node.accessibleTopology.segments["topology.convoy.dev/zone"], ebs.zone)
            let volume = try await steps.create(source, parameters: ["driver": "ebs"])
            XCTAssertEqual(volume.accessibleTopology.map(\.segments), [["topology.convoy.dev/zone": ebs.zone]])
            let made = try await ebs.volumes(named: source).count
            XCTAssertEqual(made, 1, "no EBS volume was made")

            try await steps.stageAndPublish(source, at: pods + "/source")
            XCTAssertTrue(MountInfo.isMountPoint(pods + "/source.staging"), "the EBS volume is not mounted")
            try Data(bytes).write(to: URL(fileURLWithPath: pods + "/source/blob"))
            let snapshot = try await steps.snapshot("snap-" + prefix, of: source, parameters: ["dest": "ebs://"])
            XCTAssertTrue(snapshot.readyToUse)
            XCTAssertTrue(snapshot.snapshotID.hasPrefix("ebs://us-east-1/snap-"), snapshot.snapshotID)

            try await steps.create(copy, parameters: ["driver": "ebs"], fromSnapshot: snapshot.snapshotID)
            let restored = try await ebs.volumes(named: copy).first
            XCTAssertEqual(restored?.snapshotID, String(snapshot.snapshotID.dropFirst("ebs://us-east-1/".count)),
                           "the copy was not made from the EBS snapshot")
            try await steps.stageAndPublish(copy, at: pods + "/copy")
            XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: pods + "/copy/blob"))), bytes,
                           "the restored EBS volume does not hold what was written")

            for (name, target) in [(source, "/source"), (copy, "/copy")] {
                try await steps.unpublishAndUnstage(name, at: pods + target)
                try await steps.delete(name)
            }
            var delete = Csi_V1_DeleteSnapshotRequest()
            delete.snapshotID = snapshot.snapshotID
            _ = try await steps.controller.deleteSnapshot(delete)
            let snapshotID = String(snapshot.snapshotID.dropFirst("ebs://us-east-1/".count))
            let left = try await ebs.ec2.snapshot(snapshotID)
            XCTAssertNil(left, "the EBS snapshot outlived DeleteSnapshot")
        }
        let remaining = try await ebs.volumes(named: source).count + (try await ebs.volumes(named: copy).count)
        XCTAssertEqual(remaining, 0, "DeleteVolume left EBS volumes")
    }
}
