import ConvoyCore
import Foundation

/// An EC2 client speaking the Query API (form-encoded POST of `Action=...&Version=2016-11-15`, XML answers): the
/// volume, attachment, snapshot and tag calls the ebs driver needs, with SigV4, retries on throttling and 5xx
/// (RetryingSender, RetryPolicy) and typed errors.
///
/// Errors are `ConvoyError`s whose messages name the action, the HTTP status, EC2's error code and message, and the
/// request id: `.notFound` for `*.NotFound` codes, `.invalidArgument` for parameter errors, `.unavailable` when
/// the endpoint cannot be reached, `.driverFailure` otherwise. Credentials never appear in them.
public struct EC2Client: Sendable {
    public struct Configuration: Sendable {
        public var region: String
        /// An EC2-compatible endpoint (moto, a VPC endpoint); nil: `https://ec2.<region>.amazonaws.com`.
        public var endpoint: URL?
        public var credentials: AWSCredentials
        public var retry = RetryPolicy()
        public var idleTimeout: TimeInterval = 30
        public var requestTimeLimit: Duration = .seconds(60)

        public init(region: String, endpoint: URL? = nil, credentials: AWSCredentials) {
            self.region = region
            self.endpoint = endpoint
            self.credentials = credentials
        }
    }

    static let apiVersion = "2016-11-15"

    public let configuration: Configuration
    let url: URL
    let signer: SigV4Signer
    let transport: HTTPTransport

    public init(_ configuration: Configuration) throws(ConvoyError) {
        guard !configuration.region.isEmpty,
              configuration.region.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
            throw .invalid("'\(configuration.region)' is not an AWS region (e.g. us-east-1)")
        }
        if let endpoint = configuration.endpoint {
            guard let scheme = endpoint.scheme, ["http", "https"].contains(scheme), endpoint.host != nil else {
                throw .invalid("'\(endpoint.absoluteString)' is not an http(s) URL of an EC2 endpoint")
            }
            url = endpoint.path.isEmpty ? endpoint.appendingPathComponent("") : endpoint
        } else if let standard = URL(string: "https://ec2.\(configuration.region).amazonaws.com/") {
            url = standard
        } else {
            throw .invalid("'\(configuration.region)' is not an AWS region")
        }
        self.configuration = configuration
        signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region, service: "ec2")
        transport = HTTPTransport(idleTimeout: configuration.idleTimeout, timeLimit: configuration.requestTimeLimit,
                                  maximumConnections: 4, proxy: ProxyEnvironment().proxy(for: url))
    }

    /// Sends one action and returns its answer's document; a failure becomes the ConvoyError EC2's answer calls for.
    func call(_ action: String, _ parameters: EC2Parameters = EC2Parameters()) async throws(ConvoyError) -> XMLTree {
        let body = Data(parameters.formBody(action: action, version: Self.apiVersion).utf8)
        let headers = ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"]
        let payloadHash = Digests.sha256Hex(body)
        let operation = "EC2 \(action)"
        let response = try await RetryingSender.send(policy: configuration.retry, operation: operation,
                                                     endpoint: url.absoluteString) { _ throws(ConvoyError) in
            var signed = headers
            signed.merge(try signer.signatureHeaders(method: "POST", url: url, headers: headers,
                                                     payloadHash: payloadHash),
                         uniquingKeysWith: { _, new in new })
            do throws(TransportError) {
                let response = try await transport.send(HTTPRequest(method: "POST", url: url, headers: signed,
                                                                    body: body))
                let retryable = !(200..<300).contains(response.status) && EC2ErrorResponse(response).isRetryable
                return .init(outcome: .success(response), retryable: retryable)
            } catch {
                return .init(outcome: .failure(error), retryable: error.retryable)
            }
        }
        guard (200..<300).contains(response.status) else {
            let failure = EC2ErrorResponse(response)
            let tries = response.attempts > 1 ? " after \(response.attempts) attempts" : ""
            throw ConvoyError(failure.kind, "\(operation): \(failure.summary)\(tries)")
        }
        guard let document = XMLTree.parse(response.body) else {
            throw ConvoyError(.driverFailure, "\(operation): the answer (HTTP \(response.status)) is not XML")
        }
        return document
    }
}
