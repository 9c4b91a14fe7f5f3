import CSIProtocol
import ConvoyCore
import Foundation
import GRPCCore
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// CSI over the devicemapper driver on a real dm-thin pool (in the VM of `scripts/test`; skipped on a kernel
/// without device-mapper): a thin volume staged and written, snapshotted as a block backup, restored in full and
/// lazily with the same bytes, and grown while staged (its filesystem online) with the data intact.
final class CSIDevicemapperTests: XCTestCase {
    var daemon: DaemonHarness!
    var pool = ""
    var socket = ""

    override func setUpWithError() throws {
        try DevicemapperDaemonTests.requireDeviceMapper()
        daemon = try DaemonHarness()
        pool = "cvc-" + String(UUID().uuidString.prefix(8)).lowercased()
        daemon.extraArguments = ["--drivers", "devicemapper", "--driver-opts", "dm.thinpoolname=\(pool)",
                                 "--driver-opts", "dm.defaultvolumesize=64M",
                                 "--driver-opts", "dm.thinpoolblocksize=64K"]
        socket = try daemon.startServingCSI(hostID: "dm-node")
    }

    override func tearDown() {
        guard let daemon else { return }
        DevicemapperDaemonTests.removeHost(daemon, pool: pool)
    }

    private func filesystemBytes(_ path: String) -> UInt64 {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return 0 }
        return UInt64(info.f_blocks) * UInt64(info.f_frsize)
    }

    func testSnapshotRestoresAndOnlineExpansion() async throws {
        let pods = daemon.directory + "/kubelet/pods"
        let bytes = (0..<3_000_000).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 11) }
        let store = "vfs://" + daemon.directory + "/store"
        try await withCSIClient(socket) { client in
            let steps = CSISteps(client)
            let request = createRequest("pvc-thin", bytes: 64 << 20, mountCapability())
            let volume = try await steps.controller.createVolume(request).volume
            XCTAssertEqual(volume.accessibleTopology.map(\.segments), [["topology.convoy.dev/host": "dm-node"]])
            try await steps.stageAndPublish("pvc-thin", at: pods + "/thin")
            XCTAssertEqual(MountInfo.mount(at: pods + "/thin.staging")?.type, "ext4")
            try Data(bytes).write(to: URL(fileURLWithPath: pods + "/thin/blob"))

            let snapshot = try await steps.snapshot("snap-thin", of: "pvc-thin", parameters: ["dest": store])
            XCTAssertTrue(snapshot.readyToUse, "the block backup did not finish")
            for (name, parameters) in [("pvc-full", [String: String]()), ("pvc-lazy", ["lazy": "true"])] {
                try await steps.create(name, parameters: parameters, fromSnapshot: snapshot.snapshotID)
                try await steps.stageAndPublish(name, at: pods + "/" + name)
                let read = try Array(Data(contentsOf: URL(fileURLWithPath: pods + "/\(name)/blob")))
                XCTAssertEqual(read, bytes, "\(name) does not hold what was written")
            }

            // Grown while staged and published: the device at once, the filesystem online at NodeExpandVolume.
            let before = filesystemBytes(pods + "/thin")
            var expand = Csi_V1_ControllerExpandVolumeRequest()
            expand.volumeID = "pvc-thin"
            expand.capacityRange.requiredBytes = 256 << 20
            let grown = try await steps.controller.controllerExpandVolume(expand)
            XCTAssertEqual(grown.capacityBytes, 256 << 20)
            XCTAssertTrue(grown.nodeExpansionRequired)
            var nodeExpand = Csi_V1_NodeExpandVolumeRequest()
            nodeExpand.volumeID = "pvc-thin"
            nodeExpand.volumePath = pods + "/thin"
            nodeExpand.capacityRange.requiredBytes = 256 << 20
            _ = try await steps.node.nodeExpandVolume(nodeExpand)
            _ = try await steps.node.nodeExpandVolume(nodeExpand)  // repeated: nothing more to do
            let after = filesystemBytes(pods + "/thin")
            XCTAssertGreaterThan(after, before * 3, "the filesystem did not grow: \(before) → \(after) bytes")
            XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: pods + "/thin/blob"))), bytes)
            try Data(repeating: 7, count: 100 << 20).write(to: URL(fileURLWithPath: pods + "/thin/beyond"))

            for name in ["pvc-thin", "pvc-full", "pvc-lazy"] {
                let target = pods + "/" + (name == "pvc-thin" ? "thin" : name)
                try await steps.unpublishAndUnstage(name, at: target)
                try await steps.delete(name)
            }
        }
    }

    private func createRequest(_ name: String, bytes: Int64,
                               _ capability: Csi_V1_VolumeCapability) -> Csi_V1_CreateVolumeRequest {
        var request = Csi_V1_CreateVolumeRequest()
        request.name = name
        request.capacityRange.requiredBytes = bytes
        request.volumeCapabilities = [capability]
        return request
    }

    private func blockCapability() -> Csi_V1_VolumeCapability {
        var capability = Csi_V1_VolumeCapability()
        capability.block = Csi_V1_VolumeCapability.BlockVolume()
        capability.accessMode.mode = .singleNodeWriter
        return capability
    }

    private func isBlockDevice(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFBLK
    }

    /// Raw block volumes: created without a filesystem, published as a device node the pod writes directly,
    /// snapshotted and restored block for block (in full and lazily), grown, refused to Docker's mount and to
    /// mount access.
    func testRawBlockVolumesAsDevices() async throws {
        let pods = daemon.directory + "/kubelet/pods"
        try FileManager.default.createDirectory(atPath: pods, withIntermediateDirectories: true)
        let bytes = (0..<3_000_000).map { UInt8(truncatingIfNeeded: ($0 &* 2_246_822_519) >> 9) }
        try await withCSIClient(socket) { client in
            let steps = CSISteps(client)
            var request = createRequest("pvc-raw", bytes: 64 << 20, blockCapability())
            _ = try await steps.controller.createVolume(request)
            _ = try await steps.controller.createVolume(request)  // repeated: the same volume
            request.volumeCapabilities = [mountCapability()]
            let asMount = await csiStatus { _ = try await steps.controller.createVolume(request) }
            XCTAssertEqual(asMount, .alreadyExists, "a raw block volume was returned for mount access")
            XCTAssertNotEqual(try daemon.cli(["mount", "pvc-raw"]).status, 0, "Docker's mount of a raw volume")

            try await steps.stageAndPublish("pvc-raw", at: pods + "/raw", capability: blockCapability())
            try await steps.stageAndPublish("pvc-raw", at: pods + "/raw", capability: blockCapability())  // again
            XCTAssertTrue(isBlockDevice(pods + "/raw"), "the target is not the device")
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: pods + "/raw"))
            try handle.write(contentsOf: Data(bytes))
            try handle.synchronize()
            try handle.close()
            var stats = Csi_V1_NodeGetVolumeStatsRequest()
            stats.volumeID = "pvc-raw"
            stats.volumePath = pods + "/raw"
            let size = try await steps.node.nodeGetVolumeStats(stats).usage.first?.total
            XCTAssertEqual(size, 64 << 20)

            let snapshot = try await steps.snapshot("snap-raw", of: "pvc-raw",
                                                    parameters: ["dest": "vfs://" + daemon.directory + "/store"])
            var restore = Csi_V1_CreateVolumeRequest()
            restore.name = "pvc-raw-copy"
            restore.volumeCapabilities = [blockCapability()]
            restore.volumeContentSource.snapshot.snapshotID = snapshot.snapshotID
            _ = try await steps.controller.createVolume(restore)
            try await steps.stageAndPublish("pvc-raw-copy", at: pods + "/copy", capability: blockCapability())
            let copy = try FileHandle(forReadingFrom: URL(fileURLWithPath: pods + "/copy"))
            XCTAssertEqual(try copy.read(upToCount: bytes.count).map(Array.init), bytes, "the copy's blocks differ")
            try copy.close()
            // Lazily: the device is usable at once, its blocks read through from the backup while it hydrates.
            restore.name = "pvc-raw-lazy"
            restore.parameters = ["lazy": "true"]
            _ = try await steps.controller.createVolume(restore)
            try await steps.stageAndPublish("pvc-raw-lazy", at: pods + "/lazy", capability: blockCapability())
            XCTAssertTrue(isBlockDevice(pods + "/lazy"), "the lazy volume's target is not a device")
            let lazy = try FileHandle(forReadingFrom: URL(fileURLWithPath: pods + "/lazy"))
            XCTAssertEqual(try lazy.read(upToCount: bytes.count).map(Array.init), bytes,
                           "the lazy copy's blocks differ")
            try lazy.close()

            var expand = Csi_V1_ControllerExpandVolumeRequest()
            expand.volumeID = "pvc-raw"
            expand.capacityRange.requiredBytes = 128 << 20
            _ = try await steps.controller.controllerExpandVolume(expand)
            var nodeExpand = Csi_V1_NodeExpandVolumeRequest()
            nodeExpand.volumeID = "pvc-raw"
            nodeExpand.volumePath = pods + "/raw"
            _ = try await steps.node.nodeExpandVolume(nodeExpand)
            let grown = try await steps.node.nodeGetVolumeStats(stats).usage.first?.total
            XCTAssertEqual(grown, 128 << 20, "the device did not grow")

            for (name, target) in [("pvc-raw", "/raw"), ("pvc-raw-copy", "/copy"), ("pvc-raw-lazy", "/lazy")] {
                try await steps.unpublishAndUnstage(name, at: pods + target)
                XCTAssertFalse(FileManager.default.fileExists(atPath: pods + target), "\(target) was left")
                try await steps.delete(name)
            }
        }
    }

    /// Clones of thin volumes (CLONE_VOLUME): a staged ext4 volume and a raw one, each cloned through a thin
    /// snapshot whose mapped blocks are copied onto a new thin volume. The clones hold the bytes, mount (the
    /// ext4 one; xfs would need nouuid, which the driver gives), go their own way after, and no snapshot or
    /// snapshot device is left.
    func testClonesOfThinVolumes() async throws {
        let pods = daemon.directory + "/kubelet/pods"
        try FileManager.default.createDirectory(atPath: pods, withIntermediateDirectories: true)
        let bytes = (0..<2_000_000).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
        try await withCSIClient(socket) { client in
            let steps = CSISteps(client)
            _ = try await steps.controller.createVolume(createRequest("pvc-fs", bytes: 64 << 20, mountCapability()))
            try await steps.stageAndPublish("pvc-fs", at: pods + "/fs")
            try Data(bytes).write(to: URL(fileURLWithPath: pods + "/fs/blob"))
            let clone = try await steps.create("pvc-fs-clone", cloneOf: "pvc-fs")
            XCTAssertEqual(clone.capacityBytes, 64 << 20)
            try Data([9, 9, 9]).write(to: URL(fileURLWithPath: pods + "/fs/blob"))  // the source changes after
            try await steps.stageAndPublish("pvc-fs-clone", at: pods + "/fs-clone")
            XCTAssertEqual(MountInfo.mount(at: pods + "/fs-clone.staging")?.type, "ext4")
            let read = try Array(Data(contentsOf: URL(fileURLWithPath: pods + "/fs-clone/blob")))
            XCTAssertEqual(read, bytes, "the clone does not hold what the source held")

            _ = try await steps.controller.createVolume(createRequest("pvc-raw", bytes: 64 << 20, blockCapability()))
            try await steps.stageAndPublish("pvc-raw", at: pods + "/raw", capability: blockCapability())
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: pods + "/raw"))
            try handle.seek(toOffset: 10 << 20)
            try handle.write(contentsOf: Data(bytes))
            try handle.synchronize()
            try handle.close()
            var rawClone = createRequest("pvc-raw-clone", bytes: 0, blockCapability())
            rawClone.volumeContentSource.volume.volumeID = "pvc-raw"
            _ = try await steps.controller.createVolume(rawClone)
            let asMount = await csiStatus { try await steps.create("pvc-raw-as-fs", cloneOf: "pvc-raw") }
            XCTAssertEqual(asMount, .invalidArgument, "a raw volume's clone was made for mount access")
            try await steps.stageAndPublish("pvc-raw-clone", at: pods + "/raw-clone", capability: blockCapability())
            let copy = try FileHandle(forReadingFrom: URL(fileURLWithPath: pods + "/raw-clone"))
            XCTAssertEqual(try copy.read(upToCount: 10 << 20).map { $0.allSatisfy { $0 == 0 } }, true,
                           "blocks the source never wrote are not zeros in its clone")
            XCTAssertEqual(try copy.read(upToCount: bytes.count).map(Array.init), bytes, "the clone's blocks differ")
            try copy.close()

            for (name, target) in [("pvc-fs", "/fs"), ("pvc-fs-clone", "/fs-clone"), ("pvc-raw", "/raw"),
                                   ("pvc-raw-clone", "/raw-clone")] {
                try await steps.unpublishAndUnstage(name, at: pods + target)
                try await steps.delete(name)
            }
        }
        let snapshots = try daemon.cli(["snapshot", "list"]).stdout
        XCTAssertFalse(snapshots.contains("clone-"), "a clone's snapshot was left: \(snapshots)")
    }
}
