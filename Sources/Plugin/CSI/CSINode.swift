import ConvoyCore
import CSIProtocol
import Drivers
import GRPCCore
#if canImport(Glibc)
import Glibc
#endif

/// CSI's Node service: staging takes a reference on the volume in `VolumeService` (the same table as Docker's
/// references, kept across restarts) and bind-mounts its mountpoint on the staging path; publishing bind-mounts
/// the staging path on each pod's target path, read-only when asked. Every call is idempotent, as COs repeat
/// them after timeouts and restarts.
struct CSINode: Csi_V1_Node.SimpleServiceProtocol {
    let services: Services
    let hostID: String
    let inFlight: CSIInFlight

    var volumes: VolumeService { services.volumes }

    /// The reference a staging path holds: one per path, so a repeated stage adds nothing.
    static func stageReference(_ stagingPath: String) -> String { "csi-stage:" + stagingPath }

    func nodeStageVolume(request: Csi_V1_NodeStageVolumeRequest,
                         context: ServerContext) async throws -> Csi_V1_NodeStageVolumeResponse {
        try await inFlight.run(CSIInFlight.volume(request.volumeID)) { try await stage(request) }
    }

    private func stage(_ request: Csi_V1_NodeStageVolumeRequest) async throws -> Csi_V1_NodeStageVolumeResponse {
        guard !request.volumeID.isEmpty else { throw CSIErrors.invalid("NodeStageVolume needs a volume id") }
        guard !request.stagingTargetPath.isEmpty else {
            throw CSIErrors.invalid("NodeStageVolume needs a staging_target_path")
        }
        // An ebs volume made by another node's convoy (it followed its pod here) is recorded at its first stage.
        let found = try await CSIErrors.mapping { () throws(ConvoyError) in
            try await volumes.localOrMadeElsewhere(request.volumeID, driver: request.volumeContext["driver"])
        }
        guard let record = found else {
            throw RPCError(code: .notFound, message: "no volume with id '\(request.volumeID)'")
        }
        let raw = RawBlock.isRaw(record.driverInfo)
        try checkCapability(request.hasVolumeCapability, request.volumeCapability, raw: raw, call: "NodeStageVolume")
        let staging = request.stagingTargetPath
        try CSIMounts.prepareDirectory(staging, field: "staging_target_path")
        let reference = Self.stageReference(staging)
        if raw {
            // The device is activated and held; the staging directory stays empty (publish binds the device).
            _ = try await CSIErrors.mapping { () throws(ConvoyError) in
                try await volumes.attachDevice(request.volumeID, referenceID: reference)
            }
            return Csi_V1_NodeStageVolumeResponse()
        }
        let source = try await CSIErrors.mapping { () throws(ConvoyError) in
            try await volumes.mount(request.volumeID, referenceID: reference)
        }
        if CSIMounts.isBound(staging, to: source) { return Csi_V1_NodeStageVolumeResponse() }
        do {
            guard !CSIMounts.isMounted(staging) else {
                throw RPCError(code: .alreadyExists, message: "something else is mounted on \(staging)")
            }
            try CSIMounts.bind(source, on: staging, readOnly: false,
                               flags: try CSIMountFlags.parse(request.volumeCapability.mount.mountFlags))
        } catch {
            try? await volumes.unmount(request.volumeID, referenceID: reference)
            throw error
        }
        return Csi_V1_NodeStageVolumeResponse()
    }

    func nodeUnstageVolume(request: Csi_V1_NodeUnstageVolumeRequest,
                           context: ServerContext) async throws -> Csi_V1_NodeUnstageVolumeResponse {
        try await inFlight.run(CSIInFlight.volume(request.volumeID)) { try await unstage(request) }
    }

    private func unstage(_ request: Csi_V1_NodeUnstageVolumeRequest) async throws
        -> Csi_V1_NodeUnstageVolumeResponse {
        guard !request.volumeID.isEmpty else { throw CSIErrors.invalid("NodeUnstageVolume needs a volume id") }
        guard !request.stagingTargetPath.isEmpty else {
            throw CSIErrors.invalid("NodeUnstageVolume needs a staging_target_path")
        }
        try CSIMounts.checkPath(request.stagingTargetPath, field: "staging_target_path")
        try CSIMounts.unmount(request.stagingTargetPath)
        do {
            try await volumes.unmount(request.volumeID, referenceID: Self.stageReference(request.stagingTargetPath))
        } catch where error.kind == .notFound || error.kind == .invalidArgument {
            // The volume is gone (or never could exist): nothing is held.
        } catch {
            throw CSIErrors.status(error)
        }
        return Csi_V1_NodeUnstageVolumeResponse()
    }

    func nodePublishVolume(request: Csi_V1_NodePublishVolumeRequest,
                           context: ServerContext) async throws -> Csi_V1_NodePublishVolumeResponse {
        try await inFlight.run(CSIInFlight.publish(request.volumeID, at: request.targetPath)) {
            try await publish(request)
        }
    }

    private func publish(_ request: Csi_V1_NodePublishVolumeRequest) async throws
        -> Csi_V1_NodePublishVolumeResponse {
        guard !request.volumeID.isEmpty else { throw CSIErrors.invalid("NodePublishVolume needs a volume id") }
        guard !request.targetPath.isEmpty else { throw CSIErrors.invalid("NodePublishVolume needs a target_path") }
        guard !request.stagingTargetPath.isEmpty else {
            throw CSIErrors.invalid("NodePublishVolume needs the staging_target_path (convoy stages volumes)")
        }
        let record = try CSIErrors.existing(request.volumeID, in: volumes)
        let raw = RawBlock.isRaw(record.driverInfo)
        try checkCapability(request.hasVolumeCapability, request.volumeCapability, raw: raw, call: "NodePublishVolume")
        let (staging, target) = (request.stagingTargetPath, request.targetPath)
        try CSIMounts.checkPath(staging, field: "staging_target_path")
        if raw { return try await publishDevice(record, request) }
        guard CSIMounts.isMounted(staging) else {
            throw RPCError(code: .failedPrecondition, message: "volume \(request.volumeID) is not staged at "
                + "\(staging); call NodeStageVolume first")
        }
        try CSIMounts.prepareDirectory(target, field: "target_path")
        if CSIMounts.isBound(target, to: staging) { return Csi_V1_NodePublishVolumeResponse() }
        guard !CSIMounts.isMounted(target) else {
            throw RPCError(code: .alreadyExists, message: "something else is mounted on \(target)")
        }
        let mode = request.volumeCapability.accessMode.mode
        let readOnly = request.readonly || mode == .singleNodeReaderOnly || mode == .multiNodeReaderOnly
        try CSIMounts.bind(staging, on: target, readOnly: readOnly,
                           flags: try CSIMountFlags.parse(request.volumeCapability.mount.mountFlags))
        return Csi_V1_NodePublishVolumeResponse()
    }

    func nodeUnpublishVolume(request: Csi_V1_NodeUnpublishVolumeRequest,
                             context: ServerContext) async throws -> Csi_V1_NodeUnpublishVolumeResponse {
        try await inFlight.run(CSIInFlight.publish(request.volumeID, at: request.targetPath)) {
            try await unpublish(request)
        }
    }

    private func unpublish(_ request: Csi_V1_NodeUnpublishVolumeRequest) async throws
        -> Csi_V1_NodeUnpublishVolumeResponse {
        guard !request.volumeID.isEmpty else { throw CSIErrors.invalid("NodeUnpublishVolume needs a volume id") }
        guard !request.targetPath.isEmpty else { throw CSIErrors.invalid("NodeUnpublishVolume needs a target_path") }
        try CSIMounts.checkPath(request.targetPath, field: "target_path")
        try CSIMounts.unmount(request.targetPath)
        // The CO made the parent; the target (a directory, or a block volume's file) is the plugin's to remove.
        // Anything else there (a symlink) is left alone.
        if rmdir(request.targetPath) != 0 && errno != ENOENT {
            let target = request.targetPath
            let removed = errno == ENOTDIR && (!CSIMounts.isPlainFile(target) || unlink(target) == 0)
            guard removed else {
                throw RPCError(code: .internalError,
                               message: "cannot remove \(request.targetPath): \(Filesystem.errnoText())")
            }
        }
        return Csi_V1_NodeUnpublishVolumeResponse()
    }

    func nodeGetInfo(request: Csi_V1_NodeGetInfoRequest,
                     context: ServerContext) async throws -> Csi_V1_NodeGetInfoResponse {
        var response = Csi_V1_NodeGetInfoResponse()
        response.nodeID = hostID
        response.accessibleTopology.segments = CSITopology(hostID: hostID, drivers: volumes.drivers).node
        return response
    }

    func nodeGetCapabilities(request: Csi_V1_NodeGetCapabilitiesRequest,
                             context: ServerContext) async throws -> Csi_V1_NodeGetCapabilitiesResponse {
        let served: [Csi_V1_NodeServiceCapability.RPC.TypeEnum] = [
            .stageUnstageVolume, .getVolumeStats, .expandVolume, .volumeCondition]
        var response = Csi_V1_NodeGetCapabilitiesResponse()
        response.capabilities = served.map { type in
            var capability = Csi_V1_NodeServiceCapability()
            capability.rpc.type = type
            return capability
        }
        return response
    }

    /// Bytes and inodes of the filesystem under a published or staged path (kubelet polls this on every node).
    func nodeGetVolumeStats(request: Csi_V1_NodeGetVolumeStatsRequest,
                            context: ServerContext) async throws -> Csi_V1_NodeGetVolumeStatsResponse {
        guard !request.volumeID.isEmpty else { throw CSIErrors.invalid("NodeGetVolumeStats needs a volume id") }
        guard !request.volumePath.isEmpty else { throw CSIErrors.invalid("NodeGetVolumeStats needs a volume_path") }
        let record = try CSIErrors.existing(request.volumeID, in: volumes)
        if RawBlock.isRaw(record.driverInfo) {
            guard access(request.volumePath, F_OK) == 0 else {
                throw RPCError(code: .notFound, message: "volume_path \(request.volumePath) does not exist")
            }
            return try await deviceStats(record)
        }
        // A path that cannot be one of this volume's (relative, with . or ..) is not found, as one that is gone.
        var info = statvfs()
        guard (try? CSIMounts.checkPath(request.volumePath, field: "volume_path")) != nil else {
            throw RPCError(code: .notFound, message: "volume_path \(request.volumePath) is not a volume's path")
        }
        guard statvfs(request.volumePath, &info) == 0 else {
            let code = errno
            let reason = Filesystem.errnoText(code)
            // A mount whose server is gone (a dead FUSE client) is there but answers nothing: no usage to give,
            // and the condition says why, which is what kubelet shows the user.
            guard code == ENOTCONN || code == EIO else {
                throw RPCError(code: .notFound, message: "volume_path \(request.volumePath): \(reason)")
            }
            var response = Csi_V1_NodeGetVolumeStatsResponse()
            response.volumeCondition = await CSIVolumeCondition.of(record, services: services)
            let known = response.volumeCondition.abnormal ? "; " + response.volumeCondition.message : ""
            response.volumeCondition.abnormal = true
            // Bind mounts keep the connection they were made on: a remounted pool does not revive them.
            response.volumeCondition.message = "\(request.volumePath) answers '\(reason)'\(known); restart the "
                + "pods using it, so that it is staged and published again on a live mount"
            return response
        }
        func usage(_ unit: Csi_V1_VolumeUsage.Unit, total: UInt64, free: UInt64) -> Csi_V1_VolumeUsage {
            var usage = Csi_V1_VolumeUsage()
            usage.unit = unit
            usage.total = Int64(clamping: total)
            usage.available = Int64(clamping: free)
            usage.used = Int64(clamping: total &- min(total, free))
            return usage
        }
        let block = UInt64(info.f_frsize)
        var response = Csi_V1_NodeGetVolumeStatsResponse()
        response.usage = [
            usage(.bytes, total: UInt64(info.f_blocks) * block, free: UInt64(info.f_bavail) * block),
            usage(.inodes, total: UInt64(info.f_files), free: UInt64(info.f_ffree)),
        ]
        response.volumeCondition = await CSIVolumeCondition.of(record, services: services)
        return response
    }

    private func checkCapability(_ present: Bool, _ capability: Csi_V1_VolumeCapability, raw: Bool,
                                 call: String) throws(RPCError) {
        guard present else { throw CSIErrors.invalid("\(call) needs a volume capability") }
        try CSICapabilities.check([capability], raw: raw, call: call)
        _ = try CSIMountFlags.parse(capability.mount.mountFlags)
    }
}
