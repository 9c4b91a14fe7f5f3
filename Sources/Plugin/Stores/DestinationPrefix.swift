import Backupstore
import ConvoyCore

/// A backup destination in the form the allow-list compares (`BackupDestinations`): a `vfs://` path's components
/// with symlinks resolved as far as the path exists, or an S3 bucket and region with the key prefix's components.
/// `vfs:///srv/b` holds `vfs:///srv/b/x` but not `vfs:///srv/backup-other`; `s3://b@us-east-1/p` holds
/// `s3://b@us-east-1/p/q` but neither `s3://b@us-east-1/p-q` nor `s3://b@eu-west-1/p/q`.
struct DestinationPrefix: Sendable, Hashable {
    enum Place: Sendable, Hashable {
        case directory
        case s3(bucket: String, region: String)
    }

    let place: Place
    let components: [String]

    /// Nil when a vfs path does not resolve (a link to nothing, a loop): such a destination is never allowed.
    init?(_ location: StoreLocation) {
        switch location {
        case .directory(let path):
            guard let components = CanonicalPath.components(of: path) else { return nil }
            self.place = .directory
            self.components = components
        case .s3(let bucket, let region, let prefix):
            self.place = .s3(bucket: bucket, region: region)
            self.components = prefix.split(separator: "/").map(String.init)
        }
    }

    /// Whether `other` is this destination or lies below it.
    func holds(_ other: DestinationPrefix) -> Bool {
        place == other.place && CanonicalPath.isWithin(other.components, components)
    }

    /// The destination as a location (what is opened and recorded).
    var location: StoreLocation {
        switch place {
        case .directory: .directory(path: CanonicalPath.path(components))
        case .s3(let bucket, let region): .s3(bucket: bucket, region: region, prefix: components.joined(separator: "/"))
        }
    }

    /// A destination's URL for messages. Store URLs carry no credentials (S3 requests are signed with the daemon's
    /// keys), but a user may have written some where the bucket goes (`s3://KEY:SECRET@bucket/...` parses as
    /// bucket `KEY:SECRET`, region `bucket`): a bucket or region no S3 name can be is not shown.
    static func display(_ location: StoreLocation) -> String {
        guard case .s3(let bucket, let region, let prefix) = location else { return location.url }
        func shown(_ name: String) -> String {
            name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_") }
                ? name : "<hidden>"
        }
        return "s3://\(shown(bucket))@\(shown(region))/\(prefix)"
    }
}
