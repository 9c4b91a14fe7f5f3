import AWS
import Backupstore
import ConvoyCore
import Foundation

/// Opens the object store behind a destination URL. S3 credentials come from the daemon's environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) or `~/.aws/credentials`, read when a store
/// is opened so rotated keys are picked up; they are never logged.
public struct StoreFactory: Sendable {
    /// For S3-compatible servers (path-style addressing); nil for AWS itself.
    public let s3Endpoint: URL?

    public init(s3Endpoint: URL? = nil) {
        self.s3Endpoint = s3Endpoint
    }

    /// `--s3-endpoint`, else `AWS_ENDPOINT_URL`, else AWS.
    public static func endpoint(option: String?,
                                environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(ConvoyError) -> URL? {
        guard let text = option ?? environment["AWS_ENDPOINT_URL"], !text.isEmpty else { return nil }
        return try Redaction.endpoint(text, option: "--s3-endpoint")
    }

    public func open(_ location: StoreLocation) throws(ConvoyError) -> any ObjectStore {
        switch location {
        case .directory(let path):
            return try FileObjectStore(root: path)
        case .s3(let bucket, let region, let prefix):
            return try S3ObjectStore(bucket: bucket, region: region, prefix: prefix, endpoint: s3Endpoint,
                                     credentials: try AWSCredentials.load())
        }
    }
}
