import ConvoyCore
import CSIProtocol
import GRPCCore

/// GetCapacity: what the storage class's driver can still provision (a directory's free space, a thin pool's
/// free data blocks, a gluster volume's). A driver with no such limit (ebs) answers the largest value CSI can
/// carry rather than 0, which a CO would read as full.
extension CSIController {
    func getCapacity(request: Csi_V1_GetCapacityRequest,
                     context: ServerContext) async throws -> Csi_V1_GetCapacityResponse {
        var options = try CSIParameters.own(request.parameters, call: "GetCapacity")
        options.removeValue(forKey: "lazy")
        let driverName = try await CSIErrors.mapping { () throws(ConvoyError) in
            try CreateOptions(options, drivers: volumes.drivers, defaultDriver: volumes.defaultDriver).driver
        }
        guard let driver = volumes.drivers[driverName] else {
            throw RPCError(code: .internalError, message: "driver \(driverName) vanished")
        }
        // Capacity for volumes convoy cannot make (block access on a directory driver) is none: the spec's
        // answer, not an error.
        let block = CSICapabilities.asksForBlock(request.volumeCapabilities)
        let refused = CSICapabilities.refusal(request.volumeCapabilities, raw: block) != nil
        if !request.volumeCapabilities.isEmpty && (refused || (block && !(driver is any BlockImageDriver))) {
            return Csi_V1_GetCapacityResponse()
        }
        let available = try await CSIErrors.mapping { () throws(ConvoyError) in try await driver.availableBytes() }
        var response = Csi_V1_GetCapacityResponse()
        response.availableCapacity = available.map { Int64(clamping: $0) } ?? Int64.max
        return response
    }
}
