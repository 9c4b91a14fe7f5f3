import CSIProtocol
import GRPCCore

/// The Controller methods convoy does not serve yet: UNIMPLEMENTED, and never claimed in its capabilities.
extension CSIController {
    func controllerModifyVolume(request: Csi_V1_ControllerModifyVolumeRequest,
                                context: ServerContext) async throws -> Csi_V1_ControllerModifyVolumeResponse {
        throw CSIErrors.unimplemented("ControllerModifyVolume")
    }
}
