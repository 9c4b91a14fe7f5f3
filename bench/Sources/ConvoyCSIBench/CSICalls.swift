import CSIProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix

/// The CSI calls the benchmark makes, repeated while the daemon answers ABORTED as a CO would.
struct CSICalls: Sendable {
    let controller: Csi_V1_Controller.Client<HTTP2ClientTransport.Posix>
    let node: Csi_V1_Node.Client<HTTP2ClientTransport.Posix>

    init(_ client: GRPCClient<HTTP2ClientTransport.Posix>) {
        controller = Csi_V1_Controller.Client(wrapping: client)
        node = Csi_V1_Node.Client(wrapping: client)
    }

    static var mount: Csi_V1_VolumeCapability {
        var capability = Csi_V1_VolumeCapability()
        capability.mount = Csi_V1_VolumeCapability.MountVolume()
        capability.accessMode.mode = .singleNodeWriter
        return capability
    }

    func create(_ name: String, parameters: [String: String] = [:], snapshot: String? = nil) async throws {
        var request = Csi_V1_CreateVolumeRequest()
        request.name = name
        request.parameters = parameters
        request.volumeCapabilities = [Self.mount]
        if let snapshot { request.volumeContentSource.snapshot.snapshotID = snapshot }
        while true {
            do {
                _ = try await controller.createVolume(request)
                return
            } catch let error as RPCError where error.code == .aborted {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    func delete(_ name: String) async throws {
        var request = Csi_V1_DeleteVolumeRequest()
        request.volumeID = name
        _ = try await controller.deleteVolume(request)
    }

    func snapshot(_ name: String, of volume: String, dest: String) async throws -> String {
        var request = Csi_V1_CreateSnapshotRequest()
        request.name = name
        request.sourceVolumeID = volume
        request.parameters = ["dest": dest]
        while true {
            do {
                let snapshot = try await controller.createSnapshot(request).snapshot
                if snapshot.readyToUse { return snapshot.snapshotID }
            } catch let error as RPCError where error.code == .aborted {}
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func deleteSnapshot(_ id: String) async throws {
        var request = Csi_V1_DeleteSnapshotRequest()
        request.snapshotID = id
        _ = try await controller.deleteSnapshot(request)
    }

    func stage(_ name: String, _ staging: String) async throws {
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        var request = Csi_V1_NodeStageVolumeRequest()
        request.volumeID = name
        request.stagingTargetPath = staging
        request.volumeCapability = Self.mount
        _ = try await node.nodeStageVolume(request)
    }

    func unstage(_ name: String, _ staging: String) async throws {
        var request = Csi_V1_NodeUnstageVolumeRequest()
        request.volumeID = name
        request.stagingTargetPath = staging
        _ = try await node.nodeUnstageVolume(request)
    }

    func publish(_ name: String, staging: String, target: String) async throws {
        var request = Csi_V1_NodePublishVolumeRequest()
        request.volumeID = name
        request.stagingTargetPath = staging
        request.targetPath = target
        request.volumeCapability = Self.mount
        _ = try await node.nodePublishVolume(request)
    }

    func unpublish(_ name: String, target: String) async throws {
        var request = Csi_V1_NodeUnpublishVolumeRequest()
        request.volumeID = name
        request.targetPath = target
        _ = try await node.nodeUnpublishVolume(request)
    }

    func stats(_ name: String, path: String) async throws {
        var request = Csi_V1_NodeGetVolumeStatsRequest()
        request.volumeID = name
        request.volumePath = path
        _ = try await node.nodeGetVolumeStats(request)
    }
}
