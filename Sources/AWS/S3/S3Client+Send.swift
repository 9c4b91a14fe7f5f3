import ConvoyCore
import Foundation

extension S3Client {
    /// Signs and sends `call`, retrying as `configuration.retry` allows. Returns the last HTTP answer, whatever its
    /// status (callers decide, e.g. HEAD's 404); throws `.unavailable` when no answer came at all.
    func send(_ call: S3Call) async throws(ConvoyError) -> HTTPResponse {
        let policy = configuration.retry
        let clock = ContinuousClock()
        let start = clock.now
        let payloadHash = Digests.sha256Hex(call.body)
        var attempt = 0
        while true {
            attempt += 1
            // Signed again on each attempt: X-Amz-Date must stay within 15 minutes of the server's clock.
            var headers = call.headers
            headers.merge(try signer.signatureHeaders(method: call.method, url: call.url, headers: call.headers,
                                                      payloadHash: payloadHash),
                          uniquingKeysWith: { _, signed in signed })
            let request = HTTPRequest(method: call.method, url: call.url, headers: headers, body: call.body)

            var retryable: Bool
            var outcome: Result<HTTPResponse, TransportError>
            let sent = clock.now
            do {
                var response = try await transport.send(request)
                response.attempts = attempt
                outcome = .success(response)
                report(call, attempt: attempt, status: response.status, since: sent,
                       requestID: response.header("x-amz-request-id"))
                if (200..<300).contains(response.status) {
                    guard call.errorMayComeWith200, let embedded = S3ErrorResponse.embedded(in: response) else {
                        return response
                    }
                    retryable = embedded.isRetryable || embedded.code == "InternalError"
                } else {
                    retryable = S3ErrorResponse(response).isRetryable
                }
            } catch {
                outcome = .failure(error)
                retryable = error.retryable
                report(call, attempt: attempt, status: nil, since: sent, requestID: nil)
            }

            let delay = policy.delay(after: attempt)
            let exhausted = attempt >= policy.maxAttempts || clock.now - start + delay > policy.maxTotalTime
            if !retryable || exhausted || Task.isCancelled {
                switch outcome {
                case .success(let response):
                    return response
                case .failure(let error):
                    if Task.isCancelled {
                        throw ConvoyError(.unavailable, "\(describe(call)): cancelled")
                    }
                    let tries = attempt > 1 ? " after \(attempt) attempts" : ""
                    throw ConvoyError(.unavailable, "\(describe(call)): cannot reach \(endpointDescription): \(error.description)\(tries)")
                }
            }
            do {
                try await Task.sleep(for: delay)
            } catch {
                throw ConvoyError(.unavailable, "\(describe(call)): cancelled while waiting to retry")
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
