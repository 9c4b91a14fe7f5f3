import CSIProtocol
import GRPCCore

/// The Controller's snapshot calls, served by `CSISnapshots`.
extension CSIController {
    func createSnapshot(request: Csi_V1_CreateSnapshotRequest,
                        context: ServerContext) async throws -> Csi_V1_CreateSnapshotResponse {
        var response = Csi_V1_CreateSnapshotResponse()
        response.snapshot = try await snapshots.create(name: request.name, source: request.sourceVolumeID,
                                                       parameters: request.parameters)
        return response
    }

    func deleteSnapshot(request: Csi_V1_DeleteSnapshotRequest,
                        context: ServerContext) async throws -> Csi_V1_DeleteSnapshotResponse {
        try await snapshots.delete(id: request.snapshotID)
        return Csi_V1_DeleteSnapshotResponse()
    }

    func listSnapshots(request: Csi_V1_ListSnapshotsRequest,
                       context: ServerContext) async throws -> Csi_V1_ListSnapshotsResponse {
        try await snapshots.list(request)
    }
}
