import ConvoyCore
import CSIProtocol
import GRPCCore

/// ControllerPublish / ControllerUnpublish: an ebs volume attached to (detached from) the instance of the node
/// the CO names, by the driver (`AttachingDriver`), under its leases. The CO may ask any node's convoy (a
/// cluster has one attacher), so a volume this host has no record of is looked for in what the attaching drivers
/// share; a volume of another kind has nothing to attach: a local one (vfs, devicemapper) is only ever published
/// to its own host, a shared one (glusterfs) to any, and its node's stage does the rest. Read-only is the
/// node's business (NodePublish binds read-only): an EBS attachment has no read-only form.
extension CSIController {
    func controllerPublishVolume(request: Csi_V1_ControllerPublishVolumeRequest,
                                 context: ServerContext) async throws -> Csi_V1_ControllerPublishVolumeResponse {
        guard !request.volumeID.isEmpty else { throw CSIErrors.invalid("ControllerPublishVolume needs a volume id") }
        guard !request.nodeID.isEmpty else { throw CSIErrors.invalid("ControllerPublishVolume needs a node id") }
        guard request.hasVolumeCapability else {
            throw CSIErrors.invalid("ControllerPublishVolume needs a volume capability")
        }
        return try await inFlight.run(CSIInFlight.volume(request.volumeID)) {
            var response = Csi_V1_ControllerPublishVolumeResponse()
            response.publishContext = try await publish(request)
            return response
        }
    }

    func controllerUnpublishVolume(request: Csi_V1_ControllerUnpublishVolumeRequest,
                                   context: ServerContext) async throws -> Csi_V1_ControllerUnpublishVolumeResponse {
        guard !request.volumeID.isEmpty else {
            throw CSIErrors.invalid("ControllerUnpublishVolume needs a volume id")
        }
        return try await inFlight.run(CSIInFlight.volume(request.volumeID)) {
            try await unpublish(request)
            return Csi_V1_ControllerUnpublishVolumeResponse()
        }
    }

    private func publish(_ request: Csi_V1_ControllerPublishVolumeRequest) async throws -> [String: String] {
        let (id, node) = (request.volumeID, request.nodeID)
        guard let record = try? volumes.get(id) else {
            // Another node's volume that needs no attaching: the CO passes on what CreateVolume said of it.
            let named = request.volumeContext["driver"].flatMap { volumes.drivers[$0] }
            if let named, !(named is any AttachingDriver) { return [:] }
            for driver in attachingDrivers where named == nil || driver.name == named?.name {
                let attached = try await CSIErrors.mapping { () throws(ConvoyError) in
                    try await driver.attach(id, driverInfo: nil, toHost: node)
                }
                if let attached { return attached }
            }
            throw RPCError(code: .notFound, message: "no volume with id '\(id)'")
        }
        try CSICapabilities.check([request.volumeCapability], raw: RawBlock.isRaw(record.driverInfo),
                                  call: "ControllerPublishVolume")
        let driver = volumes.drivers[record.driver]
        if let attaching = driver as? any AttachingDriver {
            let attached = try await CSIErrors.mapping { () throws(ConvoyError) in
                try await attaching.attach(id, driverInfo: record.driverInfo, toHost: node)
            }
            guard let attached else {
                throw RPCError(code: .notFound, message: "volume \(id) is recorded here, but its \(record.driver) "
                    + "volume is gone")
            }
            return attached
        }
        if driver?.scope != .global && node != topology.hostID {
            // A local volume exists on its host only: for any other node there is no such volume.
            throw RPCError(code: .notFound, message: "node \(node) cannot have volume \(id): a \(record.driver) "
                + "volume lives on host \(topology.hostID) only")
        }
        return [:]
    }

    private func unpublish(_ request: Csi_V1_ControllerUnpublishVolumeRequest) async throws {
        let (id, node) = (request.volumeID, request.nodeID)
        let record = try? volumes.get(id)
        let drivers: [any AttachingDriver] = if let record {
            [volumes.drivers[record.driver] as? any AttachingDriver].compactMap { $0 }
        } else {
            attachingDrivers
        }
        for driver in drivers {
            // Without a node id: from every node.
            do throws(ConvoyError) {
                try await driver.detach(id, driverInfo: record?.driverInfo, fromHost: node.isEmpty ? nil : node)
            } catch {
                throw CSIErrors.status(error)
            }
        }
    }

    private var attachingDrivers: [any AttachingDriver] {
        volumes.drivers.values.compactMap { $0 as? any AttachingDriver }
    }
}
