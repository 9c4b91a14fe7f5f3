import ConvoyCore
import CSIProtocol
import Drivers
import GRPCCore
#if canImport(Glibc)
import Glibc
#endif

/// CSI's Node service: staging takes a reference on the volume in `VolumeService` (the same table as Docker's
/// references, kept across restarts) and bind-mounts its mountpoint on the staging path; publishing bind-mounts
/// the staging path on each pod's target path, read-only when asked. Every call is idempotent, as COs repeat
/// them after timeouts and restarts.
struct CSINode: Csi_V1_Node.SimpleServiceProtocol {
    let volumes: VolumeService
    let hostID: String

    /// The reference a staging path holds: one per path, so a repeated stage adds nothing.
    static func stageReference(_ stagingPath: String) -> String { "csi-stage:" + stagingPath }

    func nodeStageVolume(request: Csi_V1_NodeStageVolumeRequest,
                         context: ServerContext) async throws -> Csi_V1_NodeStageVolumeResponse {
        guard !request.volumeID.isEmpty else { throw CSIErrors.invalid("NodeStageVolume needs a volume id") }
        guard !request.stagingTargetPath.isEmpty else {
            throw CSIErrors.invalid("NodeStageVolume needs a staging_target_path")
        }
        try checkCapability(request.hasVolumeCapability, request.volumeCapability, call: "NodeStageVolume")
        let staging = request.stagingTargetPath
        try CSIMounts.prepareDirectory(staging, field: "staging_target_path")
        let reference = Self.stageReference(staging)
        let source = try await CSIErrors.mapping { () throws(ConvoyError) in
            try await volumes.mount(request.volumeID, referenceID: reference)
        }
        if CSIMounts.isBound(staging, to: source) { return Csi_V1_NodeStageVolumeResponse() }
        do {
            guard !MountInfo.isMountPoint(staging) else {
                throw RPCError(code: .alreadyExists, message: "something else is mounted on \(staging)")
            }
            try CSIMounts.bind(source, on: staging, readOnly: false)
        } catch {
            try? await volumes.unmount(request.volumeID, referenceID: reference)
            throw error
        }
        return Csi_V1_NodeStageVolumeResponse()
    }

    func nodeUnstageVolume(request: Csi_V1_NodeUnstageVolumeRequest,
                           context: ServerContext) async throws -> Csi_V1_NodeUnstageVolumeResponse {
        guard !request.volumeID.isEmpty else { throw CSIErrors.invalid("NodeUnstageVolume needs a volume id") }
        guard !request.stagingTargetPath.isEmpty else {
            throw CSIErrors.invalid("NodeUnstageVolume needs a staging_target_path")
        }
        try CSIMounts.checkPath(request.stagingTargetPath, field: "staging_target_path")
        try CSIMounts.unmount(request.stagingTargetPath)
        do {
            try await volumes.unmount(request.volumeID, referenceID: Self.stageReference(request.stagingTargetPath))
        } catch where error.kind == .notFound {
            // The volume is gone: nothing is held.
        } catch {
            throw CSIErrors.status(error)
        }
        return Csi_V1_NodeUnstageVolumeResponse()
    }

    func nodePublishVolume(request: Csi_V1_NodePublishVolumeRequest,
                           context: ServerContext) async throws -> Csi_V1_NodePublishVolumeResponse {
        guard !request.volumeID.isEmpty else { throw CSIErrors.invalid("NodePublishVolume needs a volume id") }
        guard !request.targetPath.isEmpty else { throw CSIErrors.invalid("NodePublishVolume needs a target_path") }
        guard !request.stagingTargetPath.isEmpty else {
            throw CSIErrors.invalid("NodePublishVolume needs the staging_target_path (convoy stages volumes)")
        }
        try checkCapability(request.hasVolumeCapability, request.volumeCapability, call: "NodePublishVolume")
        _ = try await CSIErrors.mapping { () throws(ConvoyError) in try volumes.get(request.volumeID) }
        let (staging, target) = (request.stagingTargetPath, request.targetPath)
        try CSIMounts.checkPath(staging, field: "staging_target_path")
        guard MountInfo.isMountPoint(staging) else {
            throw RPCError(code: .failedPrecondition, message: "volume \(request.volumeID) is not staged at "
                + "\(staging); call NodeStageVolume first")
        }
        try CSIMounts.prepareDirectory(target, field: "target_path")
        if CSIMounts.isBound(target, to: staging) { return Csi_V1_NodePublishVolumeResponse() }
        guard !MountInfo.isMountPoint(target) else {
            throw RPCError(code: .alreadyExists, message: "something else is mounted on \(target)")
        }
        let mode = request.volumeCapability.accessMode.mode
        let readOnly = request.readonly || mode == .singleNodeReaderOnly || mode == .multiNodeReaderOnly
        try CSIMounts.bind(staging, on: target, readOnly: readOnly)
        return Csi_V1_NodePublishVolumeResponse()
    }

    func nodeUnpublishVolume(request: Csi_V1_NodeUnpublishVolumeRequest,
                             context: ServerContext) async throws -> Csi_V1_NodeUnpublishVolumeResponse {
        guard !request.volumeID.isEmpty else { throw CSIErrors.invalid("NodeUnpublishVolume needs a volume id") }
        guard !request.targetPath.isEmpty else { throw CSIErrors.invalid("NodeUnpublishVolume needs a target_path") }
        try CSIMounts.checkPath(request.targetPath, field: "target_path")
        try CSIMounts.unmount(request.targetPath)
        // The CO made the parent; the target directory is the plugin's to remove.
        if rmdir(request.targetPath) != 0 && errno != ENOENT && errno != ENOTDIR {
            throw RPCError(code: .internalError,
                           message: "cannot remove \(request.targetPath): \(Filesystem.errnoText())")
        }
        return Csi_V1_NodeUnpublishVolumeResponse()
    }

    func nodeGetInfo(request: Csi_V1_NodeGetInfoRequest,
                     context: ServerContext) async throws -> Csi_V1_NodeGetInfoResponse {
        var response = Csi_V1_NodeGetInfoResponse()
        response.nodeID = hostID
        return response
    }

    func nodeGetCapabilities(request: Csi_V1_NodeGetCapabilitiesRequest,
                             context: ServerContext) async throws -> Csi_V1_NodeGetCapabilitiesResponse {
        var capability = Csi_V1_NodeServiceCapability()
        capability.rpc.type = .stageUnstageVolume
        var response = Csi_V1_NodeGetCapabilitiesResponse()
        response.capabilities = [capability]
        return response
    }

    func nodeGetVolumeStats(request: Csi_V1_NodeGetVolumeStatsRequest,
                            context: ServerContext) async throws -> Csi_V1_NodeGetVolumeStatsResponse {
        throw CSIErrors.unimplemented("NodeGetVolumeStats")
    }

    func nodeExpandVolume(request: Csi_V1_NodeExpandVolumeRequest,
                          context: ServerContext) async throws -> Csi_V1_NodeExpandVolumeResponse {
        throw CSIErrors.unimplemented("NodeExpandVolume")
    }

    private func checkCapability(_ present: Bool, _ capability: Csi_V1_VolumeCapability,
                                 call: String) throws(RPCError) {
        guard present else { throw CSIErrors.invalid("\(call) needs a volume capability") }
        try CSICapabilities.check([capability], call: call)
        guard capability.mount.mountFlags.isEmpty else {
            throw CSIErrors.invalid("mount flags are not served yet (\(capability.mount.mountFlags.count) given)")
        }
    }
}
