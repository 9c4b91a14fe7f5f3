import AWS
import Backupstore
import ConvoyCore
import Foundation

/// Opens the object store behind a destination URL: the one way to a backup store, so every use of one passes
/// `BackupDestinations` (which stores this daemon may read and write). S3 credentials come from the daemon's
/// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) or `~/.aws/credentials`, read
/// when a store is opened so rotated keys are picked up; they are never logged.
public struct StoreFactory: Sendable {
    /// For S3-compatible servers (path-style addressing); nil for AWS itself.
    public let s3Endpoint: URL?
    public let destinations: BackupDestinations
    /// This daemon's host id, stamped on what its repositories write (HostIdentity).
    public let hostID: String?

    public init(s3Endpoint: URL? = nil, destinations: BackupDestinations, hostID: String? = nil) {
        self.s3Endpoint = s3Endpoint
        self.destinations = destinations
        self.hostID = hostID
    }

    /// The backup repository at `location`, opened as `open` does, writing as this daemon's host.
    public func repository(_ location: StoreLocation,
                           for use: DestinationUse = .existingBackups) throws(ConvoyError) -> BackupRepository {
        BackupRepository(store: try open(location, for: use), hostID: hostID)
    }

    /// `--s3-endpoint`, else `AWS_ENDPOINT_URL`, else AWS.
    public static func endpoint(option: String?,
                                environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(ConvoyError) -> URL? {
        guard let text = option ?? environment["AWS_ENDPOINT_URL"], !text.isEmpty else { return nil }
        return try Redaction.endpoint(text, option: "--s3-endpoint")
    }

    /// The store at `location`, once `destinations` allows it for `use` (a vfs path opened with its links
    /// resolved, as it was checked).
    public func open(_ location: StoreLocation,
                     for use: DestinationUse = .existingBackups) throws(ConvoyError) -> any ObjectStore {
        let admitted = try destinations.admit(location, for: use)
        // Recorded before anything is written: a backup that fails half way has still written there.
        if use == .newBackup { try destinations.recordWritten(admitted) }
        switch admitted {
        case .directory(let path):
            return try FileObjectStore(root: path)
        case .s3(let bucket, let region, let prefix):
            return try S3ObjectStore(bucket: bucket, region: region, prefix: prefix, endpoint: s3Endpoint,
                                     credentials: try AWSCredentials.load())
        }
    }
}
