/// The one error type that crosses module and process boundaries. `kind` decides the HTTP status and exit code;
/// `message` says what went wrong and, where there is one, what to do about it.
public struct ConvoyError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable {
        case invalidArgument   // the caller's input is wrong
        case notFound          // the named object does not exist
        case conflict          // the object exists or is in a state that forbids the operation
        case inUse             // the object still has mount references
        case exhausted         // a limit is reached (no device name left on an instance)
        case unavailable       // a dependency (daemon, driver, service) cannot be reached
        case driverFailure     // the storage driver failed doing what it was asked
        case stateFailure      // the state database failed
        case internalFailure   // a bug: report it
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    public static func invalid(_ message: String) -> ConvoyError { .init(.invalidArgument, message) }
    public static func notFound(_ message: String) -> ConvoyError { .init(.notFound, message) }
    public static func conflict(_ message: String) -> ConvoyError { .init(.conflict, message) }

    /// Wraps any error with context, keeping a ConvoyError's kind.
    public static func wrap(_ error: any Error, context: String, as kind: Kind = .internalFailure) -> ConvoyError {
        if let convoy = error as? ConvoyError {
            return ConvoyError(convoy.kind, "\(context): \(convoy.message)")
        }
        return ConvoyError(kind, "\(context): \(error)")
    }
}
