import ConvoyCore
import Foundation

extension S3Client {
    /// How to reach one bucket, and the knobs of large transfers. The defaults suit AWS S3.
    public struct Configuration: Sendable {
        public var bucket: String
        public var region: String
        /// An S3-compatible server (`http://127.0.0.1:9000`): path-style addressing. nil: AWS, virtual-hosted style.
        public var endpoint: URL?
        public var credentials: AWSCredentials
        /// Bodies larger than this go up as a multipart upload.
        public var multipartThreshold: Int = 16 * 1024 * 1024
        /// Size of each part but the last; S3 requires at least 5 MiB.
        public var partSize: Int = 8 * 1024 * 1024
        /// Parts in flight at once (each holds a copy of its part in memory).
        public var multipartConcurrency: Int = 4
        /// Connections kept to the server: requests beyond them wait for one.
        public var connections: Int = 16
        /// `max-keys` of each ListObjectsV2 page (S3 caps it at 1,000).
        public var listPageSize: Int = 1000
        /// A request fails when no byte has moved for this long.
        public var idleTimeout: TimeInterval = 60
        /// A request fails when it has not completed in this time, however busy its connection (an 8 MiB part
        /// needs ~7 min at 20 KB/s).
        public var requestTimeLimit: Duration = .seconds(600)
        public var retry: RetryPolicy = RetryPolicy()
        /// Called after every HTTP exchange, retries included (for logs and metrics). It runs on the requesting
        /// task: keep it short.
        public var onRequest: (@Sendable (S3RequestEvent) -> Void)?

        public init(bucket: String, region: String, endpoint: URL? = nil, credentials: AWSCredentials) {
            self.bucket = bucket
            self.region = region
            self.endpoint = endpoint
            self.credentials = credentials
        }

        static let minimumPartSize = 5 * 1024 * 1024
        static let maximumPartSize = 5 * 1024 * 1024 * 1024
        static let maximumParts = 10_000

        func validate() throws(ConvoyError) {
            guard (Self.minimumPartSize...Self.maximumPartSize).contains(partSize) else {
                throw ConvoyError(.invalidArgument, "S3 part size \(partSize) must be between 5 MiB and 5 GiB")
            }
            guard multipartThreshold >= 0 else {
                throw ConvoyError(.invalidArgument, "S3 multipart threshold \(multipartThreshold) must not be negative")
            }
            guard (1...64).contains(multipartConcurrency) else {
                throw ConvoyError(.invalidArgument, "S3 multipart concurrency \(multipartConcurrency) must be 1 to 64")
            }
            guard (1...256).contains(connections) else {
                throw ConvoyError(.invalidArgument, "S3 connections \(connections) must be 1 to 256")
            }
            guard (1...1000).contains(listPageSize) else {
                throw ConvoyError(.invalidArgument, "S3 list page size \(listPageSize) must be 1 to 1000")
            }
            guard idleTimeout > 0, requestTimeLimit > .zero else {
                throw ConvoyError(.invalidArgument, "S3 idle timeout and request time limit must be positive")
            }
        }
    }
}
