import CSIProtocol
import GRPCCore

/// The Controller methods convoy does not serve yet: UNIMPLEMENTED, and never claimed in its capabilities.
extension CSIController {
    func controllerPublishVolume(request: Csi_V1_ControllerPublishVolumeRequest,
                                 context: ServerContext) async throws -> Csi_V1_ControllerPublishVolumeResponse {
        throw CSIErrors.unimplemented("ControllerPublishVolume")
    }

    func controllerUnpublishVolume(request: Csi_V1_ControllerUnpublishVolumeRequest,
                                   context: ServerContext) async throws -> Csi_V1_ControllerUnpublishVolumeResponse {
        throw CSIErrors.unimplemented("ControllerUnpublishVolume")
    }

    func controllerModifyVolume(request: Csi_V1_ControllerModifyVolumeRequest,
                                context: ServerContext) async throws -> Csi_V1_ControllerModifyVolumeResponse {
        throw CSIErrors.unimplemented("ControllerModifyVolume")
    }
}
