import ConvoyCore
import Foundation

/// Where a bucket's requests go. With an endpoint (an S3-compatible server such as MinIO or moto):
/// path style, `ENDPOINT/BUCKET/KEY`. Without: AWS virtual-hosted style, `https://BUCKET.s3.REGION.amazonaws.com/KEY`.
struct S3Addressing: Sendable {
    let bucket: String
    private let base: String  // scheme://host[:port][/prefix], no trailing slash
    private let pathStyle: Bool

    init(bucket: String, region: String, endpoint: URL?) throws(ConvoyError) {
        try Self.validate(bucket: bucket)
        self.bucket = bucket
        if let endpoint {
            guard let components = URLComponents(url: endpoint, resolvingAgainstBaseURL: false),
                  let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
                  components.host?.isEmpty == false, components.query == nil
            else {
                throw ConvoyError(.invalidArgument, "S3 endpoint '\(endpoint.absoluteString)' must be an http(s) URL "
                    + "with a host and no query, such as http://127.0.0.1:9000")
            }
            var trimmed = endpoint.absoluteString
            while trimmed.hasSuffix("/") { trimmed.removeLast() }
            base = trimmed
            pathStyle = true
        } else {
            guard !region.isEmpty, region.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
                throw ConvoyError(.invalidArgument, "AWS region '\(region)' is not a region name such as us-east-1")
            }
            base = "https://\(bucket).s3.\(region).amazonaws.com"
            pathStyle = false
        }
    }

    /// The URL of the bucket (key nil) or of one object, with the query encoded the AWS way and sorted.
    func url(key: String? = nil, query: [(String, String?)] = []) throws(ConvoyError) -> URL {
        var path = pathStyle ? "/\(bucket)" : ""
        if let key {
            try Self.validate(key: key)
            path += "/" + AWSPercentEncoding.encode(key, keepingSlash: true)
        } else if !pathStyle {
            path = "/"
        }
        let encodedQuery = query
            .map { (AWSPercentEncoding.encode($0.0), $0.1.map { AWSPercentEncoding.encode($0) }) }
            .sorted { $0.0 < $1.0 }
            .map { name, value in value.map { "\(name)=\($0)" } ?? "\(name)=" }
            .joined(separator: "&")
        let text = base + path + (encodedQuery.isEmpty ? "" : "?" + encodedQuery)
        guard let url = URL(string: text) else {
            throw ConvoyError(.internalFailure, "built an invalid S3 URL for bucket \(bucket), key \(key ?? "-")")
        }
        return url
    }

    /// `s3://bucket/key`, for messages.
    func describe(_ key: String?) -> String {
        "s3://\(bucket)/\(key ?? "")"
    }

    /// S3's rules for new buckets: 3–63 of `a-z 0-9 . -`, starting and ending with a letter or digit.
    static func validate(bucket: String) throws(ConvoyError) {
        let allowed = bucket.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "-"
        }
        let edgesOK = bucket.first.map { $0.isLetter || $0.isNumber } == true
            && bucket.last.map { $0.isLetter || $0.isNumber } == true
        guard (3...63).contains(bucket.count), allowed, edgesOK else {
            throw ConvoyError(.invalidArgument, "S3 bucket name '\(bucket)' is invalid: "
                + "use 3-63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit")
        }
    }

    /// Keys are sent exactly as given, so the ones an HTTP stack would rewrite are refused: `.` and `..` path
    /// segments are collapsed by URL normalization, and S3 limits keys to 1,024 bytes.
    static func validate(key: String) throws(ConvoyError) {
        guard !key.isEmpty, key.utf8.count <= 1024 else {
            throw ConvoyError(.invalidArgument, "S3 key '\(key.prefix(80))' must be 1 to 1024 bytes long")
        }
        if key.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == "." || $0 == ".." }) {
            throw ConvoyError(.invalidArgument, "S3 key '\(key)' has a '.' or '..' segment, "
                + "which HTTP clients rewrite; choose another key")
        }
    }
}
