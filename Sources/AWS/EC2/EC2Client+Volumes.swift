import ConvoyCore

extension EC2Client {
    /// What CreateVolume is asked for. `iops`, `throughput`, `kmsKeyID` and `snapshotID` are sent only when set.
    public struct VolumeSpec: Sendable, Equatable {
        public var availabilityZone: String
        public var sizeGiB: UInt64?
        public var volumeType: String
        public var iops: Int?
        public var throughput: Int?
        public var encrypted: Bool?
        public var kmsKeyID: String?
        public var snapshotID: String?
        public var tags: [String: String]

        public init(availabilityZone: String, sizeGiB: UInt64?, volumeType: String, iops: Int? = nil,
                    throughput: Int? = nil, encrypted: Bool? = nil, kmsKeyID: String? = nil, snapshotID: String? = nil,
                    tags: [String: String] = [:]) {
            self.availabilityZone = availabilityZone
            self.sizeGiB = sizeGiB
            self.volumeType = volumeType
            self.iops = iops
            self.throughput = throughput
            self.encrypted = encrypted
            self.kmsKeyID = kmsKeyID
            self.snapshotID = snapshotID
            self.tags = tags
        }
    }

    public func createVolume(_ spec: VolumeSpec) async throws(ConvoyError) -> EC2Volume {
        var parameters = EC2Parameters()
        parameters["AvailabilityZone"] = spec.availabilityZone
        parameters["Size"] = spec.sizeGiB.map { "\($0)" }
        parameters["VolumeType"] = spec.volumeType
        parameters["Iops"] = spec.iops.map { "\($0)" }
        parameters["Throughput"] = spec.throughput.map { "\($0)" }
        parameters["Encrypted"] = spec.encrypted.map { $0 ? "true" : "false" }
        parameters["KmsKeyId"] = spec.kmsKeyID
        parameters["SnapshotId"] = spec.snapshotID
        parameters.tags(spec.tags, resourceType: "volume")
        let volume = EC2Volume(try await call("CreateVolume", parameters))
        guard !volume.id.isEmpty else {
            throw ConvoyError(.driverFailure, "EC2 CreateVolume: the answer names no volume")
        }
        return volume
    }

    /// Volumes by id (a missing one is `.notFound`) and/or by filter (`tag:convoy-volume`, `attachment.instance-id`).
    public func describeVolumes(ids: [String] = [],
                                filters: [String: [String]] = [:]) async throws(ConvoyError) -> [EC2Volume] {
        var parameters = EC2Parameters()
        parameters.list("VolumeId", ids)
        parameters.filters(filters)
        return try await paged("DescribeVolumes", parameters, set: "volumeSet").map(EC2Volume.init)
    }

    /// The volume, or nil when EC2 no longer knows it.
    public func volume(_ id: String) async throws(ConvoyError) -> EC2Volume? {
        do {
            return try await describeVolumes(ids: [id]).first
        } catch where error.kind == .notFound {
            return nil
        }
    }

    public func attachVolume(_ id: String, instanceID: String, device: String) async throws(ConvoyError) {
        var parameters = EC2Parameters()
        parameters["VolumeId"] = id
        parameters["InstanceId"] = instanceID
        parameters["Device"] = device
        _ = try await call("AttachVolume", parameters)
    }

    /// The instance is always named: EC2 accepts its absence, but it makes the request say exactly what is meant
    /// (and moto fails without it).
    public func detachVolume(_ id: String, instanceID: String, force: Bool = false) async throws(ConvoyError) {
        var parameters = EC2Parameters()
        parameters["VolumeId"] = id
        parameters["InstanceId"] = instanceID
        if force { parameters["Force"] = "true" }
        _ = try await call("DetachVolume", parameters)
    }

    /// Asks EC2 to grow the volume to `sizeGiB` (ModifyVolume); the attached device grows while EC2 optimizes it.
    public func modifyVolume(_ id: String, sizeGiB: UInt64) async throws(ConvoyError) {
        var parameters = EC2Parameters()
        parameters["VolumeId"] = id
        parameters["Size"] = "\(sizeGiB)"
        _ = try await call("ModifyVolume", parameters)
    }

    public func deleteVolume(_ id: String) async throws(ConvoyError) {
        var parameters = EC2Parameters()
        parameters["VolumeId"] = id
        _ = try await call("DeleteVolume", parameters)
    }

    public func createTags(_ resources: [String], _ tags: [String: String]) async throws(ConvoyError) {
        var parameters = EC2Parameters()
        parameters.list("ResourceId", resources)
        for (index, key) in tags.keys.sorted().enumerated() {
            parameters["Tag.\(index + 1).Key"] = key
            parameters["Tag.\(index + 1).Value"] = tags[key]
        }
        _ = try await call("CreateTags", parameters)
    }

    /// Removes the tags named (whatever their values).
    public func deleteTags(_ resources: [String], keys: [String]) async throws(ConvoyError) {
        var parameters = EC2Parameters()
        parameters.list("ResourceId", resources)
        for (index, key) in keys.sorted().enumerated() { parameters["Tag.\(index + 1).Key"] = key }
        _ = try await call("DeleteTags", parameters)
    }

    /// Every `<item>` of `set` over all pages (NextToken).
    func paged(_ action: String, _ parameters: EC2Parameters, set: String) async throws(ConvoyError) -> [XMLTree] {
        var parameters = parameters
        var items: [XMLTree] = []
        while true {
            let document = try await call(action, parameters)
            items += document.child(set)?.children("item") ?? []
            guard let token = document.value("nextToken"), !token.isEmpty else { return items }
            parameters["NextToken"] = token
        }
    }
}
