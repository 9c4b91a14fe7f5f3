import ConvoyCore

extension EC2Client {
    public func createSnapshot(volumeID: String, description: String,
                               tags: [String: String]) async throws(ConvoyError) -> EC2Snapshot {
        var parameters = EC2Parameters()
        parameters["VolumeId"] = volumeID
        parameters["Description"] = description
        parameters.tags(tags, resourceType: "snapshot")
        let snapshot = EC2Snapshot(try await call("CreateSnapshot", parameters))
        guard !snapshot.id.isEmpty else {
            throw ConvoyError(.driverFailure, "EC2 CreateSnapshot: the answer names no snapshot")
        }
        return snapshot
    }

    /// This account's snapshots (`Owner=self`) by id and/or filter. Never unfiltered: the public snapshots of a
    /// region number in the hundreds of thousands.
    public func describeSnapshots(ids: [String] = [],
                                  filters: [String: [String]] = [:]) async throws(ConvoyError) -> [EC2Snapshot] {
        var parameters = EC2Parameters()
        parameters.list("Owner", ["self"])
        parameters.list("SnapshotId", ids)
        parameters.filters(filters)
        return try await paged("DescribeSnapshots", parameters, set: "snapshotSet").map(EC2Snapshot.init)
    }

    /// The snapshot, or nil when EC2 no longer knows it.
    public func snapshot(_ id: String) async throws(ConvoyError) -> EC2Snapshot? {
        do {
            return try await describeSnapshots(ids: [id]).first
        } catch where error.kind == .notFound {
            return nil
        }
    }

    public func deleteSnapshot(_ id: String) async throws(ConvoyError) {
        var parameters = EC2Parameters()
        parameters["SnapshotId"] = id
        _ = try await call("DeleteSnapshot", parameters)
    }
}
