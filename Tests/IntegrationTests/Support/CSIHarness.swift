import CSIProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import XCTest
#if canImport(Glibc)
import Glibc
#endif

extension DaemonHarness {
    /// Starts the daemon with `--csi-socket` (and `--host-id`), waits for that socket too, and returns its path.
    func startServingCSI(hostID: String = "csi-host-a") throws -> String {
        let socket = directory + "/csi.sock"
        extraArguments += ["--csi-socket", socket, "--host-id", hostID]
        try start()
        // The HTTP sockets answer first; the gRPC one is bound by its own service of the group.
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: socket) && Date() < deadline { usleep(20_000) }
        return socket
    }
}

/// A gRPC client on a CSI socket, as a CO's sidecars use it.
/// A test case with a daemon serving CSI (vfs), started before each test with `arguments` and with
/// `environment` added to its own.
class CSIDaemonTestCase: XCTestCase {
    var daemon: DaemonHarness!
    var socket = ""
    var hostID: String { "csi-host-a" }
    var environment: [String: String] { [:] }
    var arguments: [String] { [] }

    override func setUpWithError() throws {
        daemon = try DaemonHarness()
        daemon.environment = environment
        daemon.extraArguments += arguments
        socket = try daemon.startServingCSI(hostID: hostID)
    }

    override func tearDown() {
        daemon?.cleanUp()
    }
}

func withCSIClient<Result: Sendable>(
    _ socket: String, _ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> Result) async throws -> Result {
    let transport = try HTTP2ClientTransport.Posix(target: .unixDomainSocket(path: socket),
                                                   transportSecurity: .plaintext)
    return try await withGRPCClient(transport: transport) { client in try await body(client) }
}

/// The gRPC status code `body` fails with, nil when it succeeds.
func csiStatus(_ body: () async throws -> Void) async -> RPCError.Code? {
    do {
        try await body()
        return nil
    } catch let error as RPCError {
        return error.code
    } catch {
        return .unknown
    }
}

/// A mount-access capability in `mode`.
func mountCapability(_ mode: Csi_V1_VolumeCapability.AccessMode.Mode = .singleNodeWriter) -> Csi_V1_VolumeCapability {
    var capability = Csi_V1_VolumeCapability()
    capability.mount = Csi_V1_VolumeCapability.MountVolume()
    capability.accessMode.mode = mode
    return capability
}

/// A CO's steps on one volume, as kubelet and the sidecars take them.
struct CSISteps<Transport: ClientTransport> {
    let controller: Csi_V1_Controller.Client<Transport>
    let node: Csi_V1_Node.Client<Transport>

    init(_ client: GRPCClient<Transport>) {
        controller = Csi_V1_Controller.Client(wrapping: client)
        node = Csi_V1_Node.Client(wrapping: client)
    }

    /// CreateVolume, repeated while it answers ABORTED (a restore still running), as external-provisioner does.
    @discardableResult
    func create(_ name: String, parameters: [String: String] = [:], fromSnapshot snapshot: String? = nil,
                cloneOf source: String? = nil, bytes: Int64 = 0,
                within seconds: TimeInterval = 120) async throws -> Csi_V1_Volume {
        var request = Csi_V1_CreateVolumeRequest()
        request.name = name
        request.volumeCapabilities = [mountCapability()]
        request.parameters = parameters
        if let snapshot { request.volumeContentSource.snapshot.snapshotID = snapshot }
        if let source { request.volumeContentSource.volume.volumeID = source }
        request.capacityRange.requiredBytes = bytes
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            do {
                return try await controller.createVolume(request).volume
            } catch let error as RPCError where error.code == .aborted && Date() < deadline {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    static func snapshotRequest(_ name: String, of volume: String,
                                parameters: [String: String] = [:]) -> Csi_V1_CreateSnapshotRequest {
        var request = Csi_V1_CreateSnapshotRequest()
        request.name = name
        request.sourceVolumeID = volume
        request.parameters = parameters
        return request
    }

    /// CreateSnapshot repeated until the snapshot is ready to use, as external-snapshotter does.
    func snapshot(_ name: String, of volume: String, parameters: [String: String] = [:],
                  within seconds: TimeInterval = 120) async throws -> Csi_V1_Snapshot {
        let request = Self.snapshotRequest(name, of: volume, parameters: parameters)
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            do {
                let snapshot = try await controller.createSnapshot(request).snapshot
                if snapshot.readyToUse || Date() > deadline { return snapshot }
            } catch let error as RPCError where error.code == .aborted && Date() < deadline {}
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// NodeStage then NodePublish of `volume` at `target` (a staging directory beside it), with `capability`.
    func stageAndPublish(_ volume: String, at target: String, readOnly: Bool = false,
                         capability: Csi_V1_VolumeCapability = mountCapability(),
                         context: [String: String] = [:]) async throws {
        let staging = target + ".staging"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        var stage = Csi_V1_NodeStageVolumeRequest()
        stage.volumeID = volume
        stage.stagingTargetPath = staging
        stage.volumeCapability = capability
        stage.volumeContext = context
        _ = try await node.nodeStageVolume(stage)
        var publish = Csi_V1_NodePublishVolumeRequest()
        publish.volumeID = volume
        publish.stagingTargetPath = staging
        publish.targetPath = target
        publish.volumeCapability = capability
        publish.readonly = readOnly
        publish.volumeContext = context
        _ = try await node.nodePublishVolume(publish)
    }

    func unpublishAndUnstage(_ volume: String, at target: String) async throws {
        var unpublish = Csi_V1_NodeUnpublishVolumeRequest()
        unpublish.volumeID = volume
        unpublish.targetPath = target
        _ = try await node.nodeUnpublishVolume(unpublish)
        var unstage = Csi_V1_NodeUnstageVolumeRequest()
        unstage.volumeID = volume
        unstage.stagingTargetPath = target + ".staging"
        _ = try await node.nodeUnstageVolume(unstage)
    }

    func delete(_ volume: String) async throws {
        var request = Csi_V1_DeleteVolumeRequest()
        request.volumeID = volume
        _ = try await controller.deleteVolume(request)
    }
}
