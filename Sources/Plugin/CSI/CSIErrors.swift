import ConvoyCore
import GRPCCore

/// The gRPC status CSI expects for each kind of convoy error. The message stays convoy's: it says what to do.
enum CSIErrors {
    static func status(_ error: ConvoyError) -> RPCError {
        let code: RPCError.Code = switch error.kind {
        case .invalidArgument: .invalidArgument
        case .notFound: .notFound
        case .conflict: .alreadyExists
        case .inUse: .failedPrecondition
        case .unavailable: .unavailable
        case .driverFailure, .stateFailure, .internalFailure: .internalError
        }
        return RPCError(code: code, message: error.message)
    }

    static func invalid(_ message: String) -> RPCError { RPCError(code: .invalidArgument, message: message) }

    static func unimplemented(_ method: String) -> RPCError {
        RPCError(code: .unimplemented, message: "\(method) is not served by convoy yet (see its CSI capabilities)")
    }

    /// The volume with CSI id `id`; NOT_FOUND for an id that names none, including one that could not be a
    /// convoy name (CSI ids are opaque: a wrong one is a missing volume, not a bad argument).
    static func existing(_ id: String, in volumes: VolumeService) throws(RPCError) -> VolumeRecord {
        do {
            return try volumes.get(id)
        } catch {
            throw error.kind == .invalidArgument ? RPCError(code: .notFound, message: "no volume with id '\(id)'")
                : status(error)
        }
    }

    /// Runs `body`, turning a convoy error into its gRPC status.
    static func mapping<T>(_ body: () async throws(ConvoyError) -> T) async throws(RPCError) -> T {
        do {
            return try await body()
        } catch {
            throw status(error)
        }
    }

    /// `mapping` for a body that does not wait.
    static func mapped<T>(_ body: () throws(ConvoyError) -> T) throws(RPCError) -> T {
        do {
            return try body()
        } catch {
            throw status(error)
        }
    }
}
