import CSIProtocol
import GRPCCore

/// Which volume capabilities convoy serves: a filesystem (mount access) for every volume with one, and raw block
/// access for a block driver's volume made without one (`RawBlock`), each in any access mode the CO asks for;
/// whether several nodes may really share a volume is the driver's (shared vfs, glusterfs) and the CO's
/// scheduling matter. A volume is one or the other, never both.
enum CSICapabilities {
    /// Whether `capabilities` ask for block access (all of them must then).
    static func asksForBlock(_ capabilities: [Csi_V1_VolumeCapability]) -> Bool {
        capabilities.contains { if case .block? = $0.accessType { true } else { false } }
    }

    /// Why these capabilities are not served for a volume that is (`raw`) or is not a raw block volume; nil
    /// when they are.
    static func refusal(_ capabilities: [Csi_V1_VolumeCapability], raw: Bool = false) -> String? {
        for capability in capabilities {
            switch capability.accessType {
            case .mount?:
                if raw { return "this is a raw block volume: it is served with block access only" }
            case .block?:
                if !raw {
                    return "block access is served for raw block volumes: a block driver's (devicemapper) volume "
                        + "created with block access; this one has a filesystem (mount access)"
                }
            case nil:
                return "a volume capability needs an access type (mount or block)"
            }
            guard capability.hasAccessMode, capability.accessMode.mode != .unknown else {
                return "a volume capability needs an access mode"
            }
        }
        return nil
    }

    static func check(_ capabilities: [Csi_V1_VolumeCapability], raw: Bool = false, call: String) throws(RPCError) {
        guard !capabilities.isEmpty else { throw CSIErrors.invalid("\(call) needs volume capabilities") }
        if let refusal = refusal(capabilities, raw: raw) { throw CSIErrors.invalid(refusal) }
    }
}
