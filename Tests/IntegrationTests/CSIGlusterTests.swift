import CSIProtocol
import ConvoyCore
import ConvoyTestSupport
import Foundation
import GRPCCore
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// CSI over the glusterfs driver, against the real glusterd of scripts/gluster-server: a volume staged and
/// written (its bytes on the brick), grown (its quota, which df shows, raised), snapshotted and restored lazily,
/// and reported abnormal by NodeGetVolumeStats when the pool's FUSE client dies under it, until the pod's
/// volume is staged and published again once the daemon's check has remounted the pool.
final class CSIGlusterTests: XCTestCase {
    var gluster: GlusterServer!
    var daemon: DaemonHarness!
    var socket = ""

    override func setUpWithError() throws {
        gluster = try GlusterServer.fromEnvironment()
        daemon = try DaemonHarness()
        // The pool's mount is checked (and remounted) every 3 s: a dead client is seen first, then repaired.
        daemon.extraArguments = gluster.daemonArguments(checkInterval: 3)
        socket = try daemon.startServingCSI(hostID: "gluster-node")
    }

    override func tearDown() {
        daemon?.cleanUp()
    }

    private func totalBytes(_ path: String) -> UInt64 {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return 0 }
        return UInt64(info.f_blocks) * UInt64(info.f_frsize)
    }

    func testLifeCycleExpansionAndADeadPoolMount() async throws {
        let name = "pvc-gl-" + UUID().uuidString.prefix(8).lowercased()
        let copy = name + "-copy"
        let pods = daemon.directory + "/kubelet/pods"
        let bytes = TreeFixture.randomBytes(1_500_000, seed: 7)
        try await withCSIClient(socket) { client in
            let steps = CSISteps(client)
            var request = Csi_V1_CreateVolumeRequest()
            request.name = name
            request.capacityRange.requiredBytes = 64 << 20
            request.volumeCapabilities = [mountCapability(.multiNodeMultiWriter)]
            request.parameters = ["driver": "glusterfs"]
            let volume = try await steps.controller.createVolume(request).volume
            XCTAssertTrue(volume.accessibleTopology.isEmpty, "a gluster volume is reachable from every host")
            try await steps.stageAndPublish(name, at: pods + "/gl")
            try TreeFixture.write(pods + "/gl/blob", bytes)
            XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: gluster.brick + "/\(name)/blob"))), bytes,
                           "the write is not on the brick")
            XCTAssertEqual(totalBytes(pods + "/gl"), 64 << 20, "df does not show the quota")

            var expand = Csi_V1_ControllerExpandVolumeRequest()
            expand.volumeID = name
            expand.capacityRange.requiredBytes = 96 << 20
            let grown = try await steps.controller.controllerExpandVolume(expand)
            XCTAssertEqual(grown.capacityBytes, 96 << 20)
            XCTAssertFalse(grown.nodeExpansionRequired, "a quota needs no node step")
            XCTAssertEqual(totalBytes(pods + "/gl"), 96 << 20, "the quota was not raised")

            let snapshot = try await steps.snapshot("snap-" + name, of: name,
                                                    parameters: ["dest": "vfs://" + daemon.directory + "/store"])
            try await steps.create(copy, parameters: ["driver": "glusterfs", "lazy": "true"],
                                   fromSnapshot: snapshot.snapshotID)
            try await steps.stageAndPublish(copy, at: pods + "/copy")
            XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: pods + "/copy/blob"))), bytes)

            var stats = Csi_V1_NodeGetVolumeStatsRequest()
            stats.volumeID = name
            stats.volumePath = pods + "/gl"
            let healthy = try await steps.node.nodeGetVolumeStats(stats)
            XCTAssertFalse(healthy.volumeCondition.abnormal, healthy.volumeCondition.message)
            let poolMount = daemon.root + "/glusterfs/mounts/" + gluster.pool
            try GlusterServer.kill9AndWait(try XCTUnwrap(GlusterServer.clientPID(of: poolMount)))
            let dead = try await steps.node.nodeGetVolumeStats(stats)
            XCTAssertTrue(dead.volumeCondition.abnormal, "a dead pool mount was reported healthy")
            // The pool itself may already be remounted by the daemon's check (every 3 s); the pod's bind is not.
            XCTAssertTrue(dead.volumeCondition.message.contains("Transport endpoint is not connected"),
                          dead.volumeCondition.message)
            XCTAssertTrue(dead.usage.isEmpty)
            // The pod restarted, as the message says: unpublish and unstage (repeated, as kubelet does, until the
            // daemon's check has remounted the pool), then stage and publish again on the live mount.
            let deadline = Date().addingTimeInterval(30)
            while true {
                do {
                    try await steps.unpublishAndUnstage(name, at: pods + "/gl")
                    break
                } catch where Date() < deadline {
                    try await Task.sleep(for: .milliseconds(300))
                }
            }
            try await steps.stageAndPublish(name, at: pods + "/gl")
            XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: pods + "/gl/blob"))), bytes)
            let revived = try await steps.node.nodeGetVolumeStats(stats).volumeCondition
            XCTAssertFalse(revived.abnormal, revived.message)

            for (volume, target) in [(copy, "/copy"), (name, "/gl")] {
                try await steps.unpublishAndUnstage(volume, at: pods + target)
                try await steps.delete(volume)
            }
        }
    }
}
