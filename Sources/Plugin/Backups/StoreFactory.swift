import Backupstore
import ConvoyCore

/// Opens the object store behind a destination URL.
public struct StoreFactory: Sendable {
    public init() {}

    public func open(_ location: StoreLocation) throws(ConvoyError) -> any ObjectStore {
        switch location {
        case .directory(let path):
            return try FileObjectStore(root: path)
        case .s3:
            throw ConvoyError(.unavailable, "s3:// destinations are not available in this build yet; use vfs:///path")
        }
    }
}
