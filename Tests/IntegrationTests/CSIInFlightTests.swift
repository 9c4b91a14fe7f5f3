import CSIProtocol
import ConvoyCore
import Foundation
import GRPCCore
import XCTest

/// A second CSI call for a volume while the first still runs answers ABORTED (the spec's code for "an operation
/// is pending on this volume"), while calls on other volumes and other publish targets go on; once the first
/// ends, the repeat succeeds. The daemon holds each call for a while at the failpoint `csi-in-flight`, so the
/// overlap does not depend on how fast the machine is.
final class CSIInFlightTests: CSIDaemonTestCase {
    static let hold = 1_500
    override var environment: [String: String] { ["CONVOY_FAILPOINT_PAUSE": "csi-in-flight:\(Self.hold)"] }

    private func createRequest(_ name: String) -> Csi_V1_CreateVolumeRequest {
        var request = Csi_V1_CreateVolumeRequest()
        request.name = name
        request.volumeCapabilities = [mountCapability()]
        return request
    }

    /// Starts `first`, waits until it is surely inside the daemon, then runs `second` while the first is held.
    private func overlapping(_ first: @escaping @Sendable () async throws -> Void,
                             _ second: () async throws -> Void) async throws -> RPCError.Code? {
        let running = Task { try await first() }
        try await Task.sleep(for: .milliseconds(Self.hold / 3))
        let code = await csiStatus { try await second() }
        try await running.value
        return code
    }

    func testASecondCallOnAVolumeInFlightIsAbortedAndOthersGoOn() async throws {
        let staging = daemon.directory + "/kubelet/staging"
        let targets = ["a", "b"].map { daemon.directory + "/kubelet/pods/\($0)/volume" }
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        try await withCSIClient(socket) { client in
            let controller = Csi_V1_Controller.Client(wrapping: client)
            let node = Csi_V1_Node.Client(wrapping: client)
            let create = createRequest("csi-busy")
            let twice = try await overlapping({ _ = try await controller.createVolume(create) }) {
                _ = try await controller.createVolume(create)
            }
            XCTAssertEqual(twice, .aborted, "a create repeated while the first runs must be ABORTED")
            let other = try await overlapping({ _ = try await controller.createVolume(create) }) {
                _ = try await controller.createVolume(self.createRequest("csi-other"))
            }
            XCTAssertNil(other, "a create of another volume must not wait for this one")
            XCTAssertTrue(try daemon.cli(["list"]).stdout.contains("csi-busy"))

            var stage = Csi_V1_NodeStageVolumeRequest()
            stage.volumeID = "csi-busy"
            stage.stagingTargetPath = staging
            stage.volumeCapability = mountCapability()
            let staged = stage
            var delete = Csi_V1_DeleteVolumeRequest()
            delete.volumeID = "csi-busy"
            let deleteWhileStaging = try await overlapping({ _ = try await node.nodeStageVolume(staged) }) {
                _ = try await controller.deleteVolume(delete)
            }
            XCTAssertEqual(deleteWhileStaging, .aborted)
            XCTAssertTrue(MountInfo.isMountPoint(staging), "the first call (the stage) must have finished")

            func publish(_ target: String) -> Csi_V1_NodePublishVolumeRequest {
                var request = Csi_V1_NodePublishVolumeRequest()
                request.volumeID = "csi-busy"
                request.stagingTargetPath = staging
                request.targetPath = target
                request.volumeCapability = mountCapability()
                return request
            }
            let (first, second) = (publish(targets[0]), publish(targets[1]))
            let twoTargets = try await overlapping({ _ = try await node.nodePublishVolume(first) }) {
                _ = try await node.nodePublishVolume(second)
            }
            XCTAssertNil(twoTargets, "publishes to two pods must not abort each other")
            let sameTarget = try await overlapping({ _ = try await node.nodePublishVolume(first) }) {
                _ = try await node.nodePublishVolume(first)
            }
            XCTAssertEqual(sameTarget, .aborted)
            for target in targets { XCTAssertTrue(MountInfo.isMountPoint(target), target) }

            for target in targets {
                var unpublish = Csi_V1_NodeUnpublishVolumeRequest()
                unpublish.volumeID = "csi-busy"
                unpublish.targetPath = target
                _ = try await node.nodeUnpublishVolume(unpublish)
            }
            var unstage = Csi_V1_NodeUnstageVolumeRequest()
            unstage.volumeID = "csi-busy"
            unstage.stagingTargetPath = staging
            _ = try await node.nodeUnstageVolume(unstage)
            _ = try await controller.deleteVolume(delete)  // nothing in flight now: it goes through
        }
        XCTAssertFalse(try daemon.cli(["list"]).stdout.contains("csi-busy"))
    }
}
