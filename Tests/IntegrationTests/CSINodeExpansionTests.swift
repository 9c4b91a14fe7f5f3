import CSIProtocol
import ConvoyCore
import Foundation
import GRPCCore
import XCTest

/// `--csi-expand-on-node` (the Kubernetes deployment's mode, where volumes live on single nodes and one
/// external-resizer serves them all): the Controller claims no expansion, so the resizer only records the new
/// size, and the NodeExpandVolume that kubelet then sends where the volume is staged grows it.
final class CSINodeExpansionTests: CSIDaemonTestCase {
    override var arguments: [String] { ["--csi-expand-on-node"] }

    func testTheNodeGrowsWhatTheControllerDoesNotClaim() async throws {
        let pods = daemon.directory + "/kubelet/pods"
        try await withCSIClient(socket) { client in
            let steps = CSISteps(client)
            let claimed = try await steps.controller.controllerGetCapabilities(.init()).capabilities.map(\.rpc.type)
            XCTAssertFalse(claimed.contains(.expandVolume), "controller expansion is claimed: \(claimed)")
            XCTAssertTrue(claimed.contains(.createDeleteVolume), "the other capabilities went too: \(claimed)")
            let nodeClaims = try await steps.node.nodeGetCapabilities(.init()).capabilities.map(\.rpc.type)
            XCTAssertTrue(nodeClaims.contains(.expandVolume), "the node must claim expansion: \(nodeClaims)")

            try await steps.create("pvc-grow", bytes: 64 << 20)
            try await steps.stageAndPublish("pvc-grow", at: pods + "/grow")
            try Data("kept".utf8).write(to: URL(fileURLWithPath: pods + "/grow/f"))
            var expand = Csi_V1_NodeExpandVolumeRequest()
            expand.volumeID = "pvc-grow"
            expand.volumePath = pods + "/grow"
            expand.capacityRange.requiredBytes = 128 << 20
            let grown = try await steps.node.nodeExpandVolume(expand)
            XCTAssertEqual(grown.capacityBytes, 128 << 20)
            var get = Csi_V1_ControllerGetVolumeRequest()
            get.volumeID = "pvc-grow"
            let recorded = try await steps.controller.controllerGetVolume(get).volume.capacityBytes
            XCTAssertEqual(recorded, 128 << 20, "the node's expansion did not grow the volume's record")
            XCTAssertEqual(try String(contentsOfFile: pods + "/grow/f", encoding: .utf8), "kept")
            try await steps.unpublishAndUnstage("pvc-grow", at: pods + "/grow")
        }
    }
}
