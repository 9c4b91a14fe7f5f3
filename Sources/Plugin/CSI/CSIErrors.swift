import ConvoyCore
import GRPCCore

/// The gRPC status CSI expects for each kind of convoy error. The message stays convoy's: it says what to do.
/// A convoy conflict is a state that forbids the call (FAILED_PRECONDITION: fenced, held by another host, raw
/// where a filesystem is needed), except while a volume is being made, where it is a name taken
/// (ALREADY_EXISTS: `creating`).
enum CSIErrors {
    static func status(_ error: ConvoyError, conflict: RPCError.Code = .failedPrecondition) -> RPCError {
        let code: RPCError.Code = switch error.kind {
        case .invalidArgument: .invalidArgument
        case .notFound: .notFound
        case .conflict: conflict
        case .inUse: .failedPrecondition
        case .exhausted: .resourceExhausted
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

    /// `mapping` for the calls that make a volume: a conflict there is a name already taken.
    static func creating<T>(_ body: () async throws(ConvoyError) -> T) async throws(RPCError) -> T {
        do {
            return try await body()
        } catch {
            throw status(error, conflict: .alreadyExists)
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
