import CSIProtocol
import ConvoyCore
import Foundation
import GRPCCore
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// CSI's Node service on a real daemon, checked in the kernel's mount table: a staged volume is mounted on the
/// staging path and holds a reference (CSI's DeleteVolume is refused), published targets show the volume's
/// bytes (a read-only one refuses writes), every call repeated changes nothing, and unstaging gives everything
/// back.
final class CSINodeTests: CSIDaemonTestCase {
    override var hostID: String { "csi-node-1" }

    private func create(_ name: String, _ controller: Csi_V1_Controller.Client<some ClientTransport>) async throws {
        var request = Csi_V1_CreateVolumeRequest()
        request.name = name
        request.volumeCapabilities = [mountCapability()]
        _ = try await controller.createVolume(request)
    }

    func testStagePublishWriteReadOnlyUnpublishUnstage() async throws {
        let staging = daemon.directory + "/kubelet/staging"
        let writable = daemon.directory + "/kubelet/pods/a/volume"
        let readable = daemon.directory + "/kubelet/pods/b/volume"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        try await withCSIClient(socket) { client in
            let controller = Csi_V1_Controller.Client(wrapping: client)
            let node = Csi_V1_Node.Client(wrapping: client)
            try await create("csi-node-vol", controller)
            let info = try await node.nodeGetInfo(Csi_V1_NodeGetInfoRequest())
            XCTAssertEqual(info.nodeID, "csi-node-1")

            var stage = Csi_V1_NodeStageVolumeRequest()
            stage.volumeID = "csi-node-vol"
            stage.stagingTargetPath = staging
            stage.volumeCapability = mountCapability()
            _ = try await node.nodeStageVolume(stage)
            _ = try await node.nodeStageVolume(stage)  // repeated: no second mount, no second reference
            XCTAssertTrue(MountInfo.isMountPoint(staging), "nothing mounted on the staging path")
            var delete = Csi_V1_DeleteVolumeRequest()
            delete.volumeID = "csi-node-vol"
            let held = await csiStatus { _ = try await controller.deleteVolume(delete) }
            XCTAssertEqual(held, .failedPrecondition, "a staged volume must not be deletable")

            var publish = Csi_V1_NodePublishVolumeRequest()
            publish.volumeID = "csi-node-vol"
            publish.stagingTargetPath = staging
            publish.targetPath = writable
            publish.volumeCapability = mountCapability()
            _ = try await node.nodePublishVolume(publish)
            _ = try await node.nodePublishVolume(publish)
            publish.targetPath = readable
            publish.readonly = true
            _ = try await node.nodePublishVolume(publish)

            let bytes = Array("written through a published target\n".utf8)
            try Data(bytes).write(to: URL(fileURLWithPath: writable + "/data"))
            XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: daemon.root + "/vfs/csi-node-vol/data"))),
                           bytes, "the write did not reach the volume")
            XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: readable + "/data"))), bytes)
            var stats = Csi_V1_NodeGetVolumeStatsRequest()
            stats.volumeID = "csi-node-vol"
            stats.volumePath = writable
            let usage = try await node.nodeGetVolumeStats(stats).usage
            var expected = statvfs()
            XCTAssertEqual(statvfs(daemon.root, &expected), 0)
            XCTAssertEqual(usage.map(\.unit), [.bytes, .inodes])
            XCTAssertEqual(usage.first?.total, Int64(expected.f_blocks) * Int64(expected.f_frsize),
                           "the byte total is not the volume's filesystem's")
            XCTAssertGreaterThan(usage.last?.used ?? 0, 0)
            stats.volumePath = daemon.directory + "/no-such-path"
            let gone = await csiStatus { _ = try await node.nodeGetVolumeStats(stats) }
            XCTAssertEqual(gone, .notFound)

            let fd = open(readable + "/other", O_WRONLY | O_CREAT, 0o644)
            let writeError = errno
            if fd >= 0 { close(fd) }
            XCTAssertEqual(fd, -1, "a read-only target took a write")
            XCTAssertEqual(writeError, EROFS)

            for target in [writable, readable] {
                var unpublish = Csi_V1_NodeUnpublishVolumeRequest()
                unpublish.volumeID = "csi-node-vol"
                unpublish.targetPath = target
                _ = try await node.nodeUnpublishVolume(unpublish)
                _ = try await node.nodeUnpublishVolume(unpublish)
                XCTAssertFalse(FileManager.default.fileExists(atPath: target), "\(target) was left behind")
            }
            var unstage = Csi_V1_NodeUnstageVolumeRequest()
            unstage.volumeID = "csi-node-vol"
            unstage.stagingTargetPath = staging
            _ = try await node.nodeUnstageVolume(unstage)
            _ = try await node.nodeUnstageVolume(unstage)
            XCTAssertFalse(MountInfo.isMountPoint(staging))
            _ = try await controller.deleteVolume(delete)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.root + "/vfs/csi-node-vol"))
    }

    /// How many mounts sit on `path` (as the mount table spells it).
    private func mountCount(_ path: String) -> Int {
        let table = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return table.split(separator: "\n").filter { $0.split(separator: " ").dropFirst(4).first == Substring(path) }
            .count
    }

    /// A kubelet root reached through a symlink (another disk): repeated calls still mount once, and undo.
    func testRepeatedCallsUnderASymlinkedKubeletRootMountOnce() async throws {
        let real = daemon.directory + "/disk/kubelet"
        let kubelet = daemon.directory + "/kubelet"
        try FileManager.default.createDirectory(atPath: real + "/staging", withIntermediateDirectories: true)
        XCTAssertEqual(symlink(real, kubelet), 0)
        try await withCSIClient(socket) { client in
            let controller = Csi_V1_Controller.Client(wrapping: client)
            let node = Csi_V1_Node.Client(wrapping: client)
            try await create("csi-linked", controller)
            var stage = Csi_V1_NodeStageVolumeRequest()
            stage.volumeID = "csi-linked"
            stage.stagingTargetPath = kubelet + "/staging"
            stage.volumeCapability = mountCapability()
            var publish = Csi_V1_NodePublishVolumeRequest()
            publish.volumeID = "csi-linked"
            publish.stagingTargetPath = kubelet + "/staging"
            publish.targetPath = kubelet + "/pods/p/volume"
            publish.volumeCapability = mountCapability()
            for _ in 0..<3 {
                _ = try await node.nodeStageVolume(stage)
                _ = try await node.nodePublishVolume(publish)
            }
            XCTAssertEqual(mountCount(real + "/staging"), 1, "a repeated stage stacked mounts")
            XCTAssertEqual(mountCount(real + "/pods/p/volume"), 1, "a repeated publish stacked mounts")
            var unpublish = Csi_V1_NodeUnpublishVolumeRequest()
            unpublish.volumeID = "csi-linked"
            unpublish.targetPath = publish.targetPath
            _ = try await node.nodeUnpublishVolume(unpublish)
            var unstage = Csi_V1_NodeUnstageVolumeRequest()
            unstage.volumeID = "csi-linked"
            unstage.stagingTargetPath = stage.stagingTargetPath
            _ = try await node.nodeUnstageVolume(unstage)
            XCTAssertEqual(mountCount(real + "/staging"), 0)
            XCTAssertEqual(mountCount(real + "/pods/p/volume"), 0)
            var delete = Csi_V1_DeleteVolumeRequest()
            delete.volumeID = "csi-linked"
            _ = try await controller.deleteVolume(delete)
        }
    }

    func testWrongOrderMissingVolumesAndSymlinkedPathsAreRefused() async throws {
        let staging = daemon.directory + "/kubelet/staging"
        let elsewhere = daemon.directory + "/elsewhere"
        let link = daemon.directory + "/kubelet/link"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        XCTAssertEqual(symlink(elsewhere, link), 0)
        try await withCSIClient(socket) { client in
            let controller = Csi_V1_Controller.Client(wrapping: client)
            let node = Csi_V1_Node.Client(wrapping: client)
            try await create("csi-order", controller)
            var publish = Csi_V1_NodePublishVolumeRequest()
            publish.volumeID = "csi-order"
            publish.stagingTargetPath = staging
            publish.targetPath = daemon.directory + "/kubelet/pods/c/volume"
            publish.volumeCapability = mountCapability()
            let unstaged = await csiStatus { _ = try await node.nodePublishVolume(publish) }
            XCTAssertEqual(unstaged, .failedPrecondition)

            var stage = Csi_V1_NodeStageVolumeRequest()
            stage.volumeID = "csi-missing"
            stage.stagingTargetPath = staging
            stage.volumeCapability = mountCapability()
            let missing = await csiStatus { _ = try await node.nodeStageVolume(stage) }
            XCTAssertEqual(missing, .notFound)
            stage.volumeID = "csi-order"
            stage.stagingTargetPath = link
            let linked = await csiStatus { _ = try await node.nodeStageVolume(stage) }
            XCTAssertEqual(linked, .failedPrecondition)
            XCTAssertFalse(MountInfo.isMountPoint(elsewhere), "a symlinked staging path was followed")
            // An unpublish of a symlink to a mount point must not unmount what it points at.
            stage.stagingTargetPath = staging
            _ = try await node.nodeStageVolume(stage)
            let pointer = daemon.directory + "/kubelet/pointer"
            XCTAssertEqual(symlink(staging, pointer), 0)
            var unpublish = Csi_V1_NodeUnpublishVolumeRequest()
            unpublish.volumeID = "csi-order"
            unpublish.targetPath = pointer
            _ = try await node.nodeUnpublishVolume(unpublish)
            XCTAssertTrue(MountInfo.isMountPoint(staging), "unpublishing a symlink unmounted its target")
            var unstage = Csi_V1_NodeUnstageVolumeRequest()
            unstage.volumeID = "csi-order"
            unstage.stagingTargetPath = staging
            _ = try await node.nodeUnstageVolume(unstage)
            stage.stagingTargetPath = "relative/path"
            let relative = await csiStatus { _ = try await node.nodeStageVolume(stage) }
            XCTAssertEqual(relative, .invalidArgument)
        }
    }

    /// A class's mount options become the bind mounts' flags (the kernel's mount table shows them); options a
    /// bind mount cannot take are refused, not dropped.
    func testMountFlagsReachTheKernelAndOthersAreRefused() async throws {
        let pods = daemon.directory + "/kubelet/pods"
        try await withCSIClient(socket) { client in
            let steps = CSISteps(client)
            try await steps.create("csi-flags")
            var capability = mountCapability()
            capability.mount.mountFlags = ["nosuid,nodev", "noexec"]
            try FileManager.default.createDirectory(atPath: pods + "/f.staging", withIntermediateDirectories: true)
            var stage = Csi_V1_NodeStageVolumeRequest()
            stage.volumeID = "csi-flags"
            stage.stagingTargetPath = pods + "/f.staging"
            stage.volumeCapability = capability
            _ = try await steps.node.nodeStageVolume(stage)
            var publish = Csi_V1_NodePublishVolumeRequest()
            publish.volumeID = "csi-flags"
            publish.stagingTargetPath = pods + "/f.staging"
            publish.targetPath = pods + "/f"
            publish.volumeCapability = capability
            _ = try await steps.node.nodePublishVolume(publish)
            let table = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
            for path in [pods + "/f.staging", pods + "/f"] {
                let line = table.split(separator: "\n")
                    .last { $0.split(separator: " ").dropFirst(4).first == Substring(path) }
                let options = line.map { String($0.split(separator: " ")[5]) } ?? ""
                for flag in ["nosuid", "nodev", "noexec"] {
                    XCTAssertTrue(options.split(separator: ",").contains(Substring(flag)), "\(path): \(options)")
                }
            }
            publish.targetPath = pods + "/g"
            publish.volumeCapability.mount.mountFlags = ["data=journal"]
            let refused = await csiStatus { _ = try await steps.node.nodePublishVolume(publish) }
            XCTAssertEqual(refused, .invalidArgument)
            try await steps.unpublishAndUnstage("csi-flags", at: pods + "/f")
        }
    }
}
