import ConvoyCore
import CSIProtocol
import GRPCCore

/// Where a volume can be used, as CSI topology: a local driver's volume only on the host that holds it, an ebs
/// volume in its availability zone (any instance there can attach it), a shared driver's volume anywhere. A node
/// reports its host and, where it runs ebs, its zone; the CO places pods (and asks for volumes) accordingly.
struct CSITopology: Sendable {
    static let hostKey = "topology.convoy.dev/host"
    static let zoneKey = "topology.convoy.dev/zone"

    let hostID: String
    let drivers: [String: any VolumeDriver]

    /// The zone of this host's ebs driver, nil without one.
    var zone: String? {
        guard let zone = drivers["ebs"]?.info()["AvailabilityZone"], !zone.isEmpty else { return nil }
        return zone
    }

    /// This node's segments (NodeGetInfo).
    var node: [String: String] {
        var segments = [Self.hostKey: hostID]
        if let zone { segments[Self.zoneKey] = zone }
        return segments
    }

    /// The segments a volume of `driver` made here is accessible from; empty: from everywhere.
    func segments(of driver: String) -> [String: String] {
        if driver == "ebs" { return zone.map { [Self.zoneKey: $0] } ?? [:] }
        return drivers[driver]?.scope == .global ? [:] : [Self.hostKey: hostID]
    }

    func topologies(of driver: String) -> [Csi_V1_Topology] {
        let segments = segments(of: driver)
        guard !segments.isEmpty else { return [] }
        var topology = Csi_V1_Topology()
        topology.segments = segments
        return [topology]
    }

    /// Refuses a CreateVolume whose requisite topologies exclude where this host would make the volume: the
    /// daemon makes volumes only here (the CO asks the node it chose, or a controller in the zone).
    func check(_ requirement: Csi_V1_TopologyRequirement, driver: String) throws(RPCError) {
        let segments = segments(of: driver)
        guard !segments.isEmpty, !requirement.requisite.isEmpty else { return }
        let fits = requirement.requisite.contains { topology in
            segments.allSatisfy { key, value in topology.segments[key] == value }
        }
        guard fits else {
            let here = segments.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
            throw RPCError(code: .resourceExhausted, message: "this host makes \(driver) volumes only at \(here), "
                + "which the requested topology does not include; ask the convoy of a node there")
        }
    }
}
