/// One HTTP exchange (one attempt) of an S3 operation, reported to `Configuration.onRequest` for logging and
/// metrics. It carries no header and no body, so no credential can leak through it.
public struct S3RequestEvent: Sendable {
    /// The S3 API name: `PutObject`, `ListObjectsV2`, `UploadPart`...
    public let operation: String
    public let key: String?
    public let method: String
    /// The HTTP status; nil when no answer came (connection refused, timeout).
    public let status: Int?
    /// 1 for the first try of a request, 2 for its first retry...
    public let attempt: Int
    public let duration: Duration
    public let requestID: String?
}
