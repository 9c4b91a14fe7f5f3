import ConvoyCore
import CSIProtocol
import GRPCCore

/// CSI's Controller service over the daemon's `VolumeService`: a CSI volume is a convoy volume (its id is its
/// name), so Docker, the CLI and CSI see one table of volumes and references.
///
/// Served: CreateVolume (from a snapshot too, lazily when asked, or as a clone of a volume) and DeleteVolume
/// (idempotent by name, as the spec requires), ValidateVolumeCapabilities, ListVolumes with pagination,
/// snapshots (`CSISnapshots`), GetCapacity (`CSIController+Capacity`), expansion (`CSIExpansion`),
/// ControllerGetVolume, ControllerGetCapabilities, ControllerPublish / Unpublish (`CSIController+Publish`). A
/// second call on a volume in flight answers ABORTED (`CSIInFlight`). The rest answers UNIMPLEMENTED and is not
/// claimed.
struct CSIController: Csi_V1_Controller.SimpleServiceProtocol {
    let services: Services
    let snapshots: CSISnapshots
    let topology: CSITopology
    /// Volumes whose restore is running, so a CO's repeated CreateVolume waits for it instead of starting another.
    let restoring = NameReservations()
    let inFlight: CSIInFlight
    /// Expansion is claimed by the Node only (`--csi-expand-on-node`): a CO's resizer then only records the new
    /// size, and the node that stages the volume grows it.
    let expandOnNode: Bool

    init(services: Services, snapshotDestination: String?, hostID: String, inFlight: CSIInFlight,
         expandOnNode: Bool = false) {
        self.services = services
        self.inFlight = inFlight
        self.expandOnNode = expandOnNode
        self.topology = CSITopology(hostID: hostID, drivers: services.volumes.drivers)
        self.snapshots = CSISnapshots(services: services, defaultDestination: snapshotDestination)
    }

    var volumes: VolumeService { services.volumes }

    func createVolume(request: Csi_V1_CreateVolumeRequest,
                      context: ServerContext) async throws -> Csi_V1_CreateVolumeResponse {
        try await inFlight.run(CSIInFlight.volume(CSINames.volumeName(for: request.name))) {
            try await create(request)
        }
    }

    func deleteVolume(request: Csi_V1_DeleteVolumeRequest,
                      context: ServerContext) async throws -> Csi_V1_DeleteVolumeResponse {
        try await inFlight.run(CSIInFlight.volume(request.volumeID)) { try await delete(request) }
    }

    private func create(_ request: Csi_V1_CreateVolumeRequest) async throws -> Csi_V1_CreateVolumeResponse {
        guard !request.name.isEmpty else { throw CSIErrors.invalid("CreateVolume needs a name") }
        guard request.name.utf8.count <= 128 else {
            throw CSIErrors.invalid("a CSI volume name has at most 128 characters")
        }
        let block = CSICapabilities.asksForBlock(request.volumeCapabilities)
        try CSICapabilities.check(request.volumeCapabilities, raw: block, call: "CreateVolume")
        var options = try CSIParameters.own(request.parameters, call: "CreateVolume")
        let lazy = try Self.flag(options.removeValue(forKey: "lazy"), name: "lazy")
        guard options["size"] == nil else {
            throw CSIErrors.invalid("give the size as the capacity range, not as the parameter 'size'")
        }
        let wanted = try Self.size(of: request.capacityRange)
        if wanted > 0 { options["size"] = String(wanted) }
        // Parsed here too, to compare with what an existing volume has: Create returns one as it is, and CSI wants
        // ALREADY_EXISTS when it differs from the request. Bad options are refused before anything is made.
        let asked = try await CSIErrors.mapping { () throws(ConvoyError) in
            try CreateOptions(options, drivers: volumes.drivers, defaultDriver: volumes.defaultDriver)
        }
        try topology.check(request.accessibilityRequirements, driver: asked.driver)
        let name = CSINames.volumeName(for: request.name)
        if request.hasVolumeContentSource {
            let existed = (try? volumes.get(name)) != nil
            let restored = try await restore(name, from: request.volumeContentSource, options: options, lazy: lazy)
            guard RawBlock.isRaw(restored.driverInfo) == block else {
                let holds = block ? "a filesystem (ask for mount access)" : "a raw block image (ask for block access)"
                if existed { throw RPCError(code: .alreadyExists, message: "volume \(name) exists and holds \(holds)") }
                try? await volumes.remove(name, fromDocker: false)
                throw CSIErrors.invalid("the snapshot holds \(holds)")
            }
            var response = Csi_V1_CreateVolumeResponse()
            response.volume = volume(restored)
            response.volume.contentSource = request.volumeContentSource
            return response
        }
        guard !lazy else { throw CSIErrors.invalid("the parameter lazy needs a snapshot to restore from") }
        if let existing = try? volumes.get(name), existing.state != .ready {
            throw RPCError(code: .aborted, message: "volume \(name) is being \(existing.state.participle); try again")
        }
        let record = try await CSIErrors.creating { () throws(ConvoyError) in
            block ? try await volumes.createRawBlock(name: name, options: options)
                  : try await volumes.create(name: name, options: options)
        }
        guard RawBlock.isRaw(record.driverInfo) == block else {
            throw RPCError(code: .alreadyExists, message: "volume \(name) exists with "
                + (block ? "a filesystem" : "no filesystem (a raw block volume)"))
        }
        if let madeFrom = record.driverInfo[VolumeRecord.madeFromKey] {
            throw RPCError(code: .alreadyExists, message: "volume \(name) exists, made from \(madeFrom); a "
                + "CreateVolume without that content source does not match it")
        }
        if record.driver != asked.driver || record.options != asked.driverOptions
            || (wanted > 0 && record.size != wanted) {
            throw RPCError(code: .alreadyExists, message: "volume \(name) exists with other parameters "
                + "(driver \(record.driver), size \(record.size) bytes, options \(record.options))")
        }
        var response = Csi_V1_CreateVolumeResponse()
        response.volume = volume(record)
        return response
    }

    private func delete(_ request: Csi_V1_DeleteVolumeRequest) async throws -> Csi_V1_DeleteVolumeResponse {
        guard !request.volumeID.isEmpty else { throw CSIErrors.invalid("DeleteVolume needs a volume id") }
        do {
            // An ebs volume another node's convoy made is deleted here too (the CO asks any provisioner).
            guard try await volumes.localOrMadeElsewhere(request.volumeID) != nil else {
                return Csi_V1_DeleteVolumeResponse()
            }
            try await volumes.remove(request.volumeID, fromDocker: false)
        } catch where error.kind == .notFound || error.kind == .invalidArgument {
            // Deleting what is gone (or never could exist) succeeds: the CO repeats a delete it is not sure of.
        } catch {
            throw CSIErrors.status(error)
        }
        return Csi_V1_DeleteVolumeResponse()
    }

    func validateVolumeCapabilities(
        request: Csi_V1_ValidateVolumeCapabilitiesRequest,
        context: ServerContext) async throws -> Csi_V1_ValidateVolumeCapabilitiesResponse {
        guard !request.volumeID.isEmpty else { throw CSIErrors.invalid("ValidateVolumeCapabilities needs a volume id") }
        guard !request.volumeCapabilities.isEmpty else {
            throw CSIErrors.invalid("ValidateVolumeCapabilities needs volume capabilities")
        }
        let record = try CSIErrors.existing(request.volumeID, in: volumes)
        var response = Csi_V1_ValidateVolumeCapabilitiesResponse()
        if let refusal = CSICapabilities.refusal(request.volumeCapabilities, raw: RawBlock.isRaw(record.driverInfo)) {
            response.message = refusal
        } else {
            response.confirmed.volumeCapabilities = request.volumeCapabilities
            response.confirmed.volumeContext = request.volumeContext
            response.confirmed.parameters = request.parameters
        }
        return response
    }

    /// Pages of volumes in name order; the token is the index of the next one.
    func listVolumes(request: Csi_V1_ListVolumesRequest,
                     context: ServerContext) async throws -> Csi_V1_ListVolumesResponse {
        let all = try await CSIErrors.mapping { () throws(ConvoyError) in try volumes.list() }
            .sorted { $0.name < $1.name }
        let page = try CSIPage.of(all, startingToken: request.startingToken, maxEntries: request.maxEntries)
        var response = Csi_V1_ListVolumesResponse()
        response.entries = page.entries.map { record in
            var entry = Csi_V1_ListVolumesResponse.Entry()
            entry.volume = volume(record)
            return entry
        }
        response.nextToken = page.nextToken
        return response
    }

    /// One volume, with its condition (as NodeGetVolumeStats gives it). No published node ids (not claimed:
    /// an ebs volume's attachment is EC2's to tell).
    func controllerGetVolume(request: Csi_V1_ControllerGetVolumeRequest,
                             context: ServerContext) async throws -> Csi_V1_ControllerGetVolumeResponse {
        guard !request.volumeID.isEmpty else { throw CSIErrors.invalid("ControllerGetVolume needs a volume id") }
        let record = try CSIErrors.existing(request.volumeID, in: volumes)
        var response = Csi_V1_ControllerGetVolumeResponse()
        response.volume = volume(record)
        response.status.volumeCondition = await CSIVolumeCondition.of(record, services: services)
        return response
    }

    func controllerGetCapabilities(
        request: Csi_V1_ControllerGetCapabilitiesRequest,
        context: ServerContext) async throws -> Csi_V1_ControllerGetCapabilitiesResponse {
        var response = Csi_V1_ControllerGetCapabilitiesResponse()
        var served: [Csi_V1_ControllerServiceCapability.RPC.TypeEnum] = [
            .createDeleteVolume, .listVolumes, .createDeleteSnapshot, .listSnapshots, .getCapacity,
            .getVolume, .volumeCondition, .cloneVolume, .publishUnpublishVolume]
        if !expandOnNode { served.append(.expandVolume) }
        response.capabilities = served.map { type in
            var capability = Csi_V1_ControllerServiceCapability()
            capability.rpc.type = type
            return capability
        }
        return response
    }

    func volume(_ record: VolumeRecord) -> Csi_V1_Volume {
        var volume = Csi_V1_Volume()
        volume.volumeID = record.name
        volume.capacityBytes = Int64(clamping: record.size)
        volume.volumeContext = ["driver": record.driver]
        volume.accessibleTopology = topology.topologies(of: record.driver)
        return volume
    }

    /// The size to ask for: the required bytes, else the limit, else 0 (the driver's default).
    static func size(of range: Csi_V1_CapacityRange) throws(RPCError) -> UInt64 {
        guard range.requiredBytes >= 0, range.limitBytes >= 0 else {
            throw RPCError(code: .outOfRange, message: "capacity range bytes must not be negative")
        }
        if range.limitBytes > 0 && range.requiredBytes > range.limitBytes {
            throw RPCError(code: .outOfRange, message: "required_bytes \(range.requiredBytes) exceeds "
                + "limit_bytes \(range.limitBytes)")
        }
        return UInt64(range.requiredBytes > 0 ? range.requiredBytes : range.limitBytes)
    }
}
