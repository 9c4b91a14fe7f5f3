import ConvoyCore
import CSIProtocol
import GRPCCore
#if canImport(Glibc)
import Glibc
#endif

/// Expansion, both halves. The Controller grows the volume's storage (a thin device's length, an EBS volume by
/// ModifyVolume; a directory-backed volume only records its size) and the filesystem too when the volume is
/// mounted on the answering host; the Node grows the filesystem of a staged volume (and the storage first when it
/// is the Node that is asked, as a CO without a controller expansion would). Both are idempotent.
extension CSIController {
    func controllerExpandVolume(request: Csi_V1_ControllerExpandVolumeRequest,
                                context: ServerContext) async throws -> Csi_V1_ControllerExpandVolumeResponse {
        guard !request.volumeID.isEmpty else { throw CSIErrors.invalid("ControllerExpandVolume needs a volume id") }
        let grown = try await inFlight.run(CSIInFlight.volume(request.volumeID)) {
            let record = try CSIErrors.existing(request.volumeID, in: volumes)
            return try await CSIExpansion.grow(record, to: request.capacityRange, in: volumes)
        }
        var response = Csi_V1_ControllerExpandVolumeResponse()
        response.capacityBytes = Int64(clamping: grown.size)
        // The CO then calls NodeExpandVolume where the volume is staged, which grows the filesystem there.
        response.nodeExpansionRequired = (volumes.drivers[grown.driver] as? any ExpandableDriver)?.expandsFilesystem
            ?? false
        return response
    }
}

extension CSINode {
    func nodeExpandVolume(request: Csi_V1_NodeExpandVolumeRequest,
                          context: ServerContext) async throws -> Csi_V1_NodeExpandVolumeResponse {
        guard !request.volumeID.isEmpty else { throw CSIErrors.invalid("NodeExpandVolume needs a volume id") }
        guard !request.volumePath.isEmpty else { throw CSIErrors.invalid("NodeExpandVolume needs a volume_path") }
        let record = try CSIErrors.existing(request.volumeID, in: volumes)
        guard (try? CSIMounts.checkPath(request.volumePath, field: "volume_path")) != nil,
              access(request.volumePath, F_OK) == 0 else {
            throw RPCError(code: .notFound, message: "volume_path \(request.volumePath) does not exist")
        }
        let grown = try await inFlight.run(CSIInFlight.volume(request.volumeID)) {
            let larger = try await CSIExpansion.grow(record, to: request.capacityRange, in: volumes)
            return try await CSIErrors.mapping { () throws(ConvoyError) in
                try await volumes.expandFilesystem(larger.name)
            }
        }
        var response = Csi_V1_NodeExpandVolumeResponse()
        response.capacityBytes = Int64(clamping: grown.size)
        return response
    }
}

enum CSIExpansion {
    /// Grows `record` to the range's size (required, else limit); a range it already meets changes nothing, and
    /// one whose limit is below its size is OUT_OF_RANGE (volumes never shrink).
    static func grow(_ record: VolumeRecord, to range: Csi_V1_CapacityRange,
                     in volumes: VolumeService) async throws(RPCError) -> VolumeRecord {
        let wanted = try CSIController.size(of: range)
        if range.limitBytes > 0 && UInt64(range.limitBytes) < record.size {
            throw RPCError(code: .outOfRange, message: "volume \(record.name) has \(record.size) bytes, more than "
                + "limit_bytes \(range.limitBytes): volumes do not shrink")
        }
        guard wanted > record.size else { return record }
        return try await CSIErrors.mapping { () throws(ConvoyError) in
            try await volumes.expand(record.name, to: wanted)
        }
    }
}
