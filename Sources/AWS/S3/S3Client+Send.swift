import ConvoyCore
import Foundation

extension S3Client {
    /// Signs and sends `call`, retrying as `configuration.retry` allows (RetryingSender). Returns the last HTTP
    /// answer, whatever its status (callers decide, e.g. HEAD's 404).
    func send(_ call: S3Call) async throws(ConvoyError) -> HTTPResponse {
        let payloadHash = Digests.sha256Hex(call.body)
        return try await RetryingSender.send(policy: configuration.retry, operation: describe(call),
                                             endpoint: endpointDescription) { attempt throws(ConvoyError) in
            var headers = call.headers
            headers.merge(try signer.signatureHeaders(method: call.method, url: call.url, headers: call.headers,
                                                      payloadHash: payloadHash),
                          uniquingKeysWith: { _, signed in signed })
            let request = HTTPRequest(method: call.method, url: call.url, headers: headers, body: call.body)
            let sent = ContinuousClock.now
            do throws(TransportError) {
                var response = try await transport.send(request)
                response.attempts = attempt
                report(call, attempt: attempt, status: response.status, since: sent,
                       requestID: response.header("x-amz-request-id"))
                guard (200..<300).contains(response.status) else {
                    return .init(outcome: .success(response), retryable: S3ErrorResponse(response).isRetryable)
                }
                guard call.errorMayComeWith200, let embedded = S3ErrorResponse.embedded(in: response) else {
                    return .init(outcome: .success(response), retryable: false)
                }
                return .init(outcome: .success(response),
                             retryable: embedded.isRetryable || embedded.code == "InternalError")
            } catch {
                report(call, attempt: attempt, status: nil, since: sent, requestID: nil)
                return .init(outcome: .failure(error), retryable: error.retryable)
            }
        }
    }

    /// The response when it is a success; otherwise the ConvoyError that S3's answer calls for.
    @discardableResult
    func check(_ response: HTTPResponse, _ call: S3Call) throws(ConvoyError) -> HTTPResponse {
        let failure: S3ErrorResponse? = (200..<300).contains(response.status)
            ? (call.errorMayComeWith200 ? S3ErrorResponse.embedded(in: response) : nil)
            : S3ErrorResponse(response)
        guard let failure else { return response }
        let tries = response.attempts > 1 ? " after \(response.attempts) attempts" : ""
        throw ConvoyError(failure.kind, "\(describe(call)): \(failure.summary)\(tries)")
    }

    private func report(_ call: S3Call, attempt: Int, status: Int?, since start: ContinuousClock.Instant,
                        requestID: String?) {
        guard let onRequest = configuration.onRequest else { return }
        onRequest(S3RequestEvent(operation: call.operation, key: call.key, method: call.method, status: status,
                                 attempt: attempt, duration: ContinuousClock.now - start, requestID: requestID))
    }

    /// `S3 GetObject s3://bucket/key`, then the detail if any.
    func describe(_ call: S3Call) -> String {
        "S3 \(call.operation) \(addressing.describe(call.key))" + (call.detail.map { " (\($0))" } ?? "")
    }

    var endpointDescription: String {
        configuration.endpoint?.absoluteString ?? "S3 in \(configuration.region)"
    }
}
