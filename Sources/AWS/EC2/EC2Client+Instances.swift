import ConvoyCore

/// An EC2 instance as DescribeInstances describes it: what attaching a volume to it needs.
public struct EC2Instance: Sendable, Equatable {
    public var id: String
    /// pending, running, shutting-down, terminated, stopping, stopped.
    public var state: String
    public var availabilityZone: String
    /// The names its block-device mapping uses (its root disk included).
    public var deviceNames: Set<String>
    public var tags: [String: String]

    init(_ item: XMLTree) {
        id = item.value("instanceId") ?? ""
        state = item.child("instanceState")?.value("name") ?? ""
        availabilityZone = item.child("placement")?.value("availabilityZone") ?? ""
        var names = Set<String>()
        if let root = item.value("rootDeviceName") { names.insert(root) }
        for mapping in item.child("blockDeviceMapping")?.children("item") ?? [] {
            if let name = mapping.value("deviceName") { names.insert(name) }
        }
        deviceNames = names
        tags = EC2Tags.parse(item)
    }
}

extension EC2Client {
    /// Instances by id and/or by filter (`tag:convoy-host`, `instance-state-name`), over every page.
    public func describeInstances(ids: [String] = [],
                                  filters: [String: [String]] = [:]) async throws(ConvoyError) -> [EC2Instance] {
        var parameters = EC2Parameters()
        parameters.list("InstanceId", ids)
        parameters.filters(filters)
        // Instances come grouped by reservation: <reservationSet><item><instancesSet><item>.
        return try await paged("DescribeInstances", parameters, set: "reservationSet").flatMap { reservation in
            (reservation.child("instancesSet")?.children("item") ?? []).map(EC2Instance.init)
        }
    }

    /// The device names the instance's block-device mapping uses (its root disk included).
    public func instanceDeviceNames(_ instanceID: String) async throws(ConvoyError) -> Set<String> {
        try await describeInstances(ids: [instanceID]).reduce(into: Set<String>()) { $0.formUnion($1.deviceNames) }
    }
}
