/// Exponential backoff with jitter, bounded both in attempts and in total time. Which failures are worth
/// another attempt is decided by `isRetryable`: server errors, throttling, and lost connections; never a 4xx
/// other than throttling, since the same request would fail the same way.
public struct RetryPolicy: Sendable, Equatable {
    /// Attempts in all, the first included.
    public var maxAttempts: Int
    /// The backoff ceiling before attempt n+1 is `min(maxDelay, baseDelay * 2^(n-1))`; the wait is between half
    /// and all of it, at random, so that clients throttled together do not come back together.
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// No attempt starts after this much time from the first one.
    public var maxTotalTime: Duration

    public init(maxAttempts: Int = 5, baseDelay: Duration = .milliseconds(200), maxDelay: Duration = .seconds(5),
                maxTotalTime: Duration = .seconds(120)) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxTotalTime = maxTotalTime
    }

    public static let none = RetryPolicy(maxAttempts: 1)

    /// The wait before the attempt after `attempt` (1-based).
    func delay(after attempt: Int) -> Duration {
        let ceiling = min(maxDelay, baseDelay * (1 << min(max(attempt - 1, 0), 20)))
        return ceiling * Double.random(in: 0.5...1.0)
    }

    /// Error codes AWS services use for "slow down"; some come with a 400 status.
    static let throttlingCodes: Set<String> = [
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
        "BandwidthLimitExceeded", "RequestThrottled", "SlowDown", "EC2ThrottledException", "PriorRequestNotComplete",
    ]

    static func isRetryable(status: Int, code: String?) -> Bool {
        if status >= 500 || status == 429 { return true }
        if let code, throttlingCodes.contains(code) { return true }
        return false
    }
}
