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
        if access("/dev/mapper/control", F_OK) != 0 { _ = try? Command.run("/sbin/modprobe", ["dm-thin-pool"]) }
        guard access("/dev/mapper/control", F_OK) == 0 else {
            if ProcessInfo.processInfo.environment["CONVOY_REQUIRE_DM"] == "1" {
                throw HarnessError("CONVOY_REQUIRE_DM=1 but this kernel has no device-mapper")
            }
            throw XCTSkip("no device-mapper in this kernel; scripts/test runs these tests in a VM")
        }
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
            var request = Csi_V1_CreateVolumeRequest()
            request.name = "pvc-thin"
            request.capacityRange.requiredBytes = 64 << 20
            request.volumeCapabilities = [mountCapability()]
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
}
