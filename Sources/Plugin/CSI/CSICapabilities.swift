import CSIProtocol
import GRPCCore

/// Which volume capabilities convoy serves: a filesystem (mount access), in any access mode the CO asks for;
/// whether several nodes may really share a volume is the driver's (shared vfs, glusterfs) and the CO's
/// scheduling matter. Raw block access is not served yet.
enum CSICapabilities {
    /// Why these capabilities are not served, or nil when they are.
    static func refusal(_ capabilities: [Csi_V1_VolumeCapability]) -> String? {
        for capability in capabilities {
            guard case .mount = capability.accessType else {
                return "convoy serves volumes as filesystems (mount access); raw block access is not served yet"
            }
            guard capability.hasAccessMode, capability.accessMode.mode != .unknown else {
                return "a volume capability needs an access mode"
            }
        }
        return nil
    }

    static func check(_ capabilities: [Csi_V1_VolumeCapability], call: String) throws(RPCError) {
        guard !capabilities.isEmpty else { throw CSIErrors.invalid("\(call) needs volume capabilities") }
        if let refusal = refusal(capabilities) { throw CSIErrors.invalid(refusal) }
    }
}
