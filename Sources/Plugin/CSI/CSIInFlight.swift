import ConvoyCore
import GRPCCore

/// The CSI calls in flight, by what they act on, shared by the Controller and Node services. A second call for a
/// volume while one runs answers ABORTED, as the spec asks: a CO that timed out and asked again learns to wait
/// for its first call instead of racing it (kubelet and the sidecars retry with backoff). Publishes are keyed by
/// volume and target path, so one volume is published to several pods at once.
final class CSIInFlight: Sendable {
    private let keys = NameReservations()

    static func volume(_ id: String) -> String { "volume \(id)" }
    static func publish(_ id: String, at target: String) -> String { "volume \(id) at \(target)" }

    func run<Answer: Sendable>(_ key: String, _ call: () async throws -> Answer) async throws -> Answer {
        guard keys.reserve(key) else {
            throw RPCError(code: .aborted, message: "an operation on \(key) is in progress; try again when it ends")
        }
        defer { keys.release(key) }
        #if DEBUG
        await Failpoint.pause("csi-in-flight")
        #endif
        return try await call()
    }
}
