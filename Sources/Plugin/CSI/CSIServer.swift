import ConvoyCore
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import ServiceLifecycle

/// CSI's gRPC server on a UNIX socket (`--csi-socket`), run beside the HTTP APIs in the daemon's service group:
/// plaintext HTTP/2, the socket root-only like the plugin socket (a CO's node plugin runs as root beside it).
struct CSIServer: Service {
    let socket: String
    let services: [any RegistrableRPCService]
    let logger: Logger
    /// Called once the socket accepts connections (readiness).
    var onListening: @Sendable () async -> Void = {}

    func run() async throws {
        let transport = HTTP2ServerTransport.Posix(address: .unixDomainSocket(path: socket),
                                                   transportSecurity: .plaintext)
        let server = GRPCServer(transport: transport, services: services)
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await server.serve() }
                _ = try await transport.listeningAddress
                do {
                    try SocketFiles.restrict(socket, mode: 0o600)
                } catch {
                    // A socket that cannot be made root-only must not stay open to others.
                    logger.critical("cannot restrict the CSI socket; stopping it", metadata: ["error": "\(error)"])
                    server.beginGracefulShutdown()
                    throw error
                }
                logger.info("serving CSI", metadata: ["socket": "\(socket)"])
                await onListening()
            }
        } onGracefulShutdown: {
            server.beginGracefulShutdown()
        }
    }
}
