import CSIProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
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
