import ConvoyCore
import CSIProtocol
import GRPCCore

/// CSI's Identity service: who the plugin is, what it serves, whether it is ready.
///
/// Capabilities name only the services this daemon registers (Controller and Node, always together): a CO that
/// sees CONTROLLER_SERVICE calls CreateVolume, and must not get UNIMPLEMENTED for it. Volumes have topology.
struct CSIIdentity: Csi_V1_Identity.SimpleServiceProtocol {
    /// The plugin's name: domain-name notation (the spec's rule, and Kubernetes' for a CSIDriver object),
    /// reverse-DNS of the project's own, never changed once COs refer to it.
    static let pluginName = "dev.convoy.csi"

    let hostID: String
    let drivers: [String]

    func getPluginInfo(request: Csi_V1_GetPluginInfoRequest,
                       context: ServerContext) async throws -> Csi_V1_GetPluginInfoResponse {
        var response = Csi_V1_GetPluginInfoResponse()
        response.name = Self.pluginName
        response.vendorVersion = ConvoyVersion.current
        // Opaque to the CO, shown by its tools: which host and drivers answer.
        response.manifest = ["host": hostID, "drivers": drivers.joined(separator: ",")]
        return response
    }

    func getPluginCapabilities(request: Csi_V1_GetPluginCapabilitiesRequest,
                               context: ServerContext) async throws -> Csi_V1_GetPluginCapabilitiesResponse {
        // Topology: local volumes are usable on their host only, ebs volumes in their zone (CSITopology).
        let served: [Csi_V1_PluginCapability.Service.TypeEnum] = [.controllerService, .volumeAccessibilityConstraints]
        var response = Csi_V1_GetPluginCapabilitiesResponse()
        response.capabilities = served.map { type in
            var capability = Csi_V1_PluginCapability()
            capability.service.type = type
            return capability
        }
        // Volumes grow while in use (devicemapper and ebs filesystems grow online).
        var expansion = Csi_V1_PluginCapability()
        expansion.volumeExpansion.type = .online
        response.capabilities.append(expansion)
        return response
    }

    /// Ready: the drivers were started before the socket was opened, so a daemon that answers has them.
    func probe(request: Csi_V1_ProbeRequest, context: ServerContext) async throws -> Csi_V1_ProbeResponse {
        var response = Csi_V1_ProbeResponse()
        response.ready.value = true
        return response
    }
}
