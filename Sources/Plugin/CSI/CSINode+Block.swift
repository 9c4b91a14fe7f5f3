import ConvoyCore
import CSIProtocol
import Drivers
import GRPCCore
#if canImport(Glibc)
import Glibc
#endif

/// Block access on the Node: a raw block volume's stage holds its active device (`VolumeService.attachDevice`),
/// and a publish binds the device node on the target, a file the plugin creates (the CO made its directory).
extension CSINode {
    func publishDevice(_ record: VolumeRecord, _ request: Csi_V1_NodePublishVolumeRequest) async throws(RPCError)
        -> Csi_V1_NodePublishVolumeResponse {
        let (staging, target) = (request.stagingTargetPath, request.targetPath)
        guard record.references.contains(Self.stageReference(staging)) else {
            throw RPCError(code: .failedPrecondition, message: "volume \(record.name) is not staged at \(staging); "
                + "call NodeStageVolume first")
        }
        // A read-only mount does not stop writes through a device node: refused rather than pretended.
        let mode = request.volumeCapability.accessMode.mode
        guard !request.readonly, mode != .singleNodeReaderOnly, mode != .multiNodeReaderOnly else {
            throw CSIErrors.invalid("read-only block access is not served: a read-only bind of a device node still "
                + "lets it be written")
        }
        let device = try await CSIErrors.mapping { () throws(ConvoyError) in try await volumes.rawDevice(record) }
        try CSIMounts.checkPath(target, field: "target_path")
        var info = stat()
        if lstat(target, &info) == 0 {
            let kind = info.st_mode & S_IFMT
            guard kind == S_IFREG || kind == S_IFBLK else {
                throw RPCError(code: .failedPrecondition, message: "target_path \(target) is neither a file nor "
                    + "a device (a block volume is published on a file)")
            }
            if CSIMounts.isMounted(target) {
                var bound = stat(), wanted = stat()
                guard stat(target, &bound) == 0, stat(device, &wanted) == 0, bound.st_rdev == wanted.st_rdev else {
                    throw RPCError(code: .alreadyExists, message: "something else is mounted on \(target)")
                }
                return Csi_V1_NodePublishVolumeResponse()
            }
        } else {
            let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw RPCError(code: .internalError, message: "cannot create \(target): \(Filesystem.errnoText())")
            }
            close(fd)
        }
        try CSIMounts.bind(device, on: target, readOnly: false)
        return Csi_V1_NodePublishVolumeResponse()
    }

    /// NodeGetVolumeStats of a raw block volume: its size (a device has no free space to tell).
    func deviceStats(_ record: VolumeRecord) async throws(RPCError) -> Csi_V1_NodeGetVolumeStatsResponse {
        let device = try await CSIErrors.mapping { () throws(ConvoyError) in try await volumes.rawDevice(record) }
        let bytes = try await CSIErrors.mapping { () throws(ConvoyError) in
            try await BlockFilesystem.deviceBytes(device)
        }
        var usage = Csi_V1_VolumeUsage()
        usage.unit = .bytes
        usage.total = Int64(clamping: bytes)
        var response = Csi_V1_NodeGetVolumeStatsResponse()
        response.usage = [usage]
        response.volumeCondition = await CSIVolumeCondition.of(record, services: services)
        return response
    }
}
