import CSIProtocol
import ConvoyCore
import Foundation
import GRPCCore
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// CSI over the ebs driver, against moto's EC2 and the attach emulator: a volume made in the node's zone (its
/// topology), staged (attached, formatted, mounted), written through a published target, snapshotted as an
/// EBS snapshot (`ebs://` destination), grown online, and restored from its snapshot into a new EBS volume with
/// the same bytes.
final class CSIEBSTests: EBSDaemonTestCase {
    override var servesCSI: Bool { true }
    override var volumeSuffixes: [String] { ["src", "copy", "clone", "raw", "rawcopy", "rawfs"] }

    func testLifeCycleWithAnEBSSnapshotAndARestore() async throws {
        let (source, copy) = (prefix + "src", prefix + "copy")
        let pods = daemon.directory + "/kubelet/pods"
        let bytes = (0..<700_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        try await withCSIClient(csiSocket) { client in
            let steps = CSISteps(client)
            let node = try await steps.node.nodeGetInfo(Csi_V1_NodeGetInfoRequest())
            XCTAssertEqual(node.accessibleTopology.segments["topology.convoy.dev/zone"], ebs.zone)
            // xfs: this host's kernel refuses ext4's online resize (EPERM); ext4 grows online in the VM's
            // devicemapper tests, under Debian's kernel.
            let volume = try await steps.create(source, parameters: ["driver": "ebs", "fs": "xfs"])
            XCTAssertEqual(volume.accessibleTopology.map(\.segments), [["topology.convoy.dev/zone": ebs.zone]])
            let made = try await ebs.volumes(named: source).count
            XCTAssertEqual(made, 1, "no EBS volume was made")

            try await steps.stageAndPublish(source, at: pods + "/source")
            XCTAssertTrue(MountInfo.isMountPoint(pods + "/source.staging"), "the EBS volume is not mounted")
            try Data(bytes).write(to: URL(fileURLWithPath: pods + "/source/blob"))
            let snapshot = try await steps.snapshot("snap-" + prefix, of: source, parameters: ["dest": "ebs://"])
            XCTAssertTrue(snapshot.readyToUse)
            XCTAssertTrue(snapshot.snapshotID.hasPrefix("ebs://us-east-1/snap-"), snapshot.snapshotID)

            // Grown while staged: ModifyVolume, the device grows (the emulator, as EBS does), then the filesystem.
            var expand = Csi_V1_ControllerExpandVolumeRequest()
            expand.volumeID = source
            expand.capacityRange.requiredBytes = 2 << 30
            let grown = try await steps.controller.controllerExpandVolume(expand)
            XCTAssertEqual(grown.capacityBytes, 2 << 30)
            XCTAssertTrue(grown.nodeExpansionRequired)
            let resized = try await ebs.volumes(named: source).first?.sizeGiB
            XCTAssertEqual(resized, 2, "EC2 was not asked to grow the volume")
            var nodeExpand = Csi_V1_NodeExpandVolumeRequest()
            nodeExpand.volumeID = source
            nodeExpand.volumePath = pods + "/source"
            _ = try await steps.node.nodeExpandVolume(nodeExpand)
            var info = statvfs()
            XCTAssertEqual(statvfs(pods + "/source", &info), 0)
            XCTAssertGreaterThan(UInt64(info.f_blocks) * UInt64(info.f_frsize), 3 << 29,
                                 "the filesystem did not grow past 1.5 GiB")
            XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: pods + "/source/blob"))), bytes)

            try await steps.create(copy, parameters: ["driver": "ebs"], fromSnapshot: snapshot.snapshotID)
            let restored = try await ebs.volumes(named: copy).first
            XCTAssertEqual(restored?.snapshotID, String(snapshot.snapshotID.dropFirst("ebs://us-east-1/".count)),
                           "the copy was not made from the EBS snapshot")
            try await steps.stageAndPublish(copy, at: pods + "/copy")
            XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: pods + "/copy/blob"))), bytes,
                           "the restored EBS volume does not hold what was written")

            // A clone: an EBS snapshot made a backup (complete), a volume made from it, the snapshot deleted.
            let clone = prefix + "clone"
            try await steps.create(clone, parameters: ["driver": "ebs"], cloneOf: source)
            try await steps.stageAndPublish(clone, at: pods + "/clone")
            XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: pods + "/clone/blob"))), bytes,
                           "the clone does not hold what was written")
            let cloneSnapshots = try await ebs.ec2.describeSnapshots(filters: ["tag:convoy-volume": [source]])
            XCTAssertEqual(cloneSnapshots.map(\.id), [String(snapshot.snapshotID.dropFirst("ebs://us-east-1/".count))],
                           "the EBS snapshot a clone was made through is left")

            for (name, target) in [(source, "/source"), (copy, "/copy"), (clone, "/clone")] {
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
        var remaining = 0
        for name in [source, copy, prefix + "clone"] { remaining += try await ebs.volumes(named: name).count }
        XCTAssertEqual(remaining, 0, "DeleteVolume left EBS volumes")
    }

    private func blockRequest(_ name: String) -> Csi_V1_CreateVolumeRequest {
        var request = Csi_V1_CreateVolumeRequest()
        request.name = name
        request.parameters = ["driver": "ebs"]
        request.capacityRange.requiredBytes = 1 << 30
        request.volumeCapabilities = [Self.blockCapability]
        return request
    }

    static var blockCapability: Csi_V1_VolumeCapability {
        var capability = Csi_V1_VolumeCapability()
        capability.block = Csi_V1_VolumeCapability.BlockVolume()
        capability.accessMode.mode = .singleNodeWriter
        return capability
    }

    /// Block access on ebs: a raw volume (no filesystem made) staged as its attached device under the lease,
    /// written by the "pod" through the device node published at its target, snapshotted as an EBS snapshot and
    /// restored raw with the same blocks; Docker's mount and mount access are refused.
    func testRawBlockVolumeIsTheAttachedDevice() async throws {
        let (raw, rawCopy) = (prefix + "raw", prefix + "rawcopy")
        let pods = daemon.directory + "/kubelet/pods"
        try FileManager.default.createDirectory(atPath: pods, withIntermediateDirectories: true)
        let bytes = (0..<900_000).map { UInt8(truncatingIfNeeded: $0 &* 2_246_822_519 >> 11) }
        try await withCSIClient(csiSocket) { client in
            let steps = CSISteps(client)
            _ = try await steps.controller.createVolume(blockRequest(raw))
            _ = try await steps.controller.createVolume(blockRequest(raw))  // repeated: the same volume
            let made = try await ebs.volumes(named: raw).count
            XCTAssertEqual(made, 1, "a repeated create made another EBS volume")
            XCTAssertNotEqual(try daemon.cli(["mount", raw]).status, 0, "Docker mounted a raw block volume")

            try await steps.stageAndPublish(raw, at: pods + "/raw", capability: Self.blockCapability)
            var info = stat()
            XCTAssertEqual(stat(pods + "/raw", &info), 0)
            XCTAssertEqual(info.st_mode & S_IFMT, S_IFBLK, "the target is not the attached device")
            let leased = try await ebs.volumes(named: raw).first?.tags["convoy-lease-host"] ?? ""
            XCTAssertFalse(leased.isEmpty, "the device was attached without the volume's lease")
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: pods + "/raw"))
            try handle.seek(toOffset: 1 << 20)
            try handle.write(contentsOf: Data(bytes))
            try handle.synchronize()
            try handle.close()

            let snapshot = try await steps.snapshot("snap-raw-" + prefix, of: raw, parameters: ["dest": "ebs://"])
            var restore = blockRequest(rawCopy)
            restore.capacityRange.requiredBytes = 0
            restore.volumeContentSource.snapshot.snapshotID = snapshot.snapshotID
            _ = try await steps.controller.createVolume(restore)
            var asFilesystem = restore
            asFilesystem.name = prefix + "rawfs"
            asFilesystem.volumeCapabilities = [mountCapability()]
            let refused = await csiStatus { _ = try await steps.controller.createVolume(asFilesystem) }
            XCTAssertEqual(refused, .invalidArgument, "a raw snapshot was restored for mount access")
            try await steps.stageAndPublish(rawCopy, at: pods + "/copy", capability: Self.blockCapability)
            let copy = try FileHandle(forReadingFrom: URL(fileURLWithPath: pods + "/copy"))
            try copy.seek(toOffset: 1 << 20)
            XCTAssertEqual(try copy.read(upToCount: bytes.count).map(Array.init), bytes,
                           "the restored EBS volume's blocks differ")
            try copy.close()

            for (name, target) in [(raw, "/raw"), (rawCopy, "/copy")] {
                try await steps.unpublishAndUnstage(name, at: pods + target)
                XCTAssertFalse(FileManager.default.fileExists(atPath: pods + target), "\(target) was left")
                let lease = try await ebs.volumes(named: name).first?.tags["convoy-lease-host"] ?? ""
                XCTAssertTrue(lease.isEmpty, "unstaging \(name) kept its lease (\(lease))")
                try await steps.delete(name)
            }
            var delete = Csi_V1_DeleteSnapshotRequest()
            delete.snapshotID = snapshot.snapshotID
            _ = try await steps.controller.deleteSnapshot(delete)
        }
        let remaining = try await ebs.volumes(named: raw).count + (try await ebs.volumes(named: rawCopy).count)
        XCTAssertEqual(remaining, 0, "DeleteVolume left EBS volumes")
    }
}
