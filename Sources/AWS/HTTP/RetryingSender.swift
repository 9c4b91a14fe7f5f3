import ConvoyCore
import Foundation

/// The attempt loop every AWS client shares: sign and send (done by `attempt`, which signs afresh each time, since
/// X-Amz-Date must stay within 15 minutes of the server's clock), wait as `policy` says, try again while the answer
/// is worth it. Returns the last HTTP answer whatever its status (callers turn it into their errors); throws
/// `.unavailable` when no answer came at all.
enum RetryingSender {
    /// What one attempt produced, and whether another attempt may do better.
    struct Attempt {
        var outcome: Result<HTTPResponse, TransportError>
        var retryable: Bool
    }

    /// `operation` and `endpoint` only serve messages: `S3 GetObject s3://b/k: cannot reach http://...: ...`.
    static func send(policy: RetryPolicy, operation: String, endpoint: String,
                     attempt: (Int) async throws(ConvoyError) -> Attempt) async throws(ConvoyError) -> HTTPResponse {
        let clock = ContinuousClock()
        let start = clock.now
        var number = 0
        while true {
            number += 1
            let result = try await attempt(number)
            let delay = policy.delay(after: number)
            let exhausted = number >= policy.maxAttempts || clock.now - start + delay > policy.maxTotalTime
            if !result.retryable || exhausted || Task.isCancelled {
                switch result.outcome {
                case .success(var response):
                    response.attempts = number
                    return response
                case .failure(let error):
                    if Task.isCancelled { throw ConvoyError(.unavailable, "\(operation): cancelled") }
                    let tries = number > 1 ? " after \(number) attempts" : ""
                    throw ConvoyError(.unavailable,
                                      "\(operation): cannot reach \(endpoint): \(error.description)\(tries)")
                }
            }
            do {
                try await Task.sleep(for: delay)
            } catch {
                throw ConvoyError(.unavailable, "\(operation): cancelled while waiting to retry")
            }
        }
    }
}
