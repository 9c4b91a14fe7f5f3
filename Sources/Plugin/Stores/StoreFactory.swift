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
    /// Requests to one s3:// store in flight at once (`--s3-concurrency`).
    public let s3Concurrency: Int
    public let destinations: BackupDestinations
    /// This daemon's host id, stamped on what its repositories write (HostIdentity).
    public let hostID: String?
    /// The keys of the encrypted stores this daemon has opened.
    public let keyring: StoreKeyring
    /// Canonical URLs of the stores this host only adds to (`--append-only`).
    public let appendOnly: Set<String>
    /// Where copies of S3 stores' pack indexes are kept (`PackIndexCache`), one directory per store; nil: none.
    public let packIndexCacheRoot: String?

    public init(s3Endpoint: URL? = nil, s3Concurrency: Int = S3ObjectStore.defaultConcurrency,
                destinations: BackupDestinations, hostID: String? = nil,
                keyring: StoreKeyring = StoreKeyring(), appendOnly: Set<String> = [],
                packIndexCacheRoot: String? = nil) {
        self.packIndexCacheRoot = packIndexCacheRoot
        self.s3Endpoint = s3Endpoint
        self.s3Concurrency = s3Concurrency
        self.destinations = destinations
        self.hostID = hostID
        self.keyring = keyring
        self.appendOnly = appendOnly
    }

    /// The backup repository at `location`, opened as `open` does, writing as this daemon's host; an encrypted
    /// store with its key (refused with what to do when the daemon has none).
    public func repository(_ location: StoreLocation,
                           for use: DestinationUse = .existingBackups) async throws(ConvoyError) -> BackupRepository {
        let store = try open(location, for: use)
        return BackupRepository(store: store, hostID: hostID,
                                cipher: try await keyring.cipher(for: location, store: store),
                                packIndexCache: packIndexCache(for: location))
    }

    /// A directory store's indexes are as near as a copy would be; an S3 store's are a GET each. Named by the
    /// store's URL and the endpoint it is reached at (one bucket name on two servers is two stores).
    func packIndexCache(for location: StoreLocation) -> PackIndexCache? {
        guard let packIndexCacheRoot, case .s3 = location else { return nil }
        let name = location.url + " " + (s3Endpoint?.absoluteString ?? "aws")
        return PackIndexCache(directory: packIndexCacheRoot + "/" + BlockCodec.hash(Array(name.utf8)))
    }

    /// Store URLs as this daemon compares them (`--append-only`).
    public static func canonicalURLs(_ urls: [String]) throws(ConvoyError) -> Set<String> {
        var result: Set<String> = []
        for url in urls { result.insert(try StoreLocation.parse(url).url) }
        return result
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
        let store: any ObjectStore
        switch admitted {
        case .directory(let path):
            store = try FileObjectStore(root: path)
        case .s3(let bucket, let region, let prefix):
            store = try S3ObjectStore(bucket: bucket, region: region, prefix: prefix, endpoint: s3Endpoint,
                                      concurrency: s3Concurrency,
                                      credentials: try AWSCredentials.load())
        }
        return appendOnly.contains(location.url) ? AppendOnlyObjectStore(base: store) : store
    }
}
