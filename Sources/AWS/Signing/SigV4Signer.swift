import ConvoyCore
import Foundation

/// AWS Signature Version 4, header form (`Authorization: AWS4-HMAC-SHA256 ...`).
///
/// The request's URL must already be percent-encoded the AWS way (`AWSPercentEncoding`); the signer derives the
/// canonical URI and query from it. Every header passed in is signed (with `host`), except those proxies or HTTP
/// stacks may rewrite: `user-agent`, `expect`, `transfer-encoding`, `content-length`, `authorization`.
public struct SigV4Signer: Sendable {
    /// S3 departs from the other services in two ways: its canonical URI is the path as sent (neither normalized
    /// nor encoded a second time), and it wants the payload hash in `x-amz-content-sha256`, which it then signs.
    public enum Style: Sendable {
        case s3
        case standard
    }

    public let credentials: AWSCredentials
    public let region: String
    public let service: String
    public let style: Style

    public init(credentials: AWSCredentials, region: String, service: String, style: Style? = nil) {
        self.credentials = credentials
        self.region = region
        self.service = service
        self.style = style ?? (service == "s3" ? .s3 : .standard)
    }

    /// The headers to add to the request: `Authorization`, `X-Amz-Date`, `X-Amz-Security-Token` with a session
    /// token, `X-Amz-Content-SHA256` for S3. `payloadHash` is the hex SHA-256 of the body.
    public func signatureHeaders(method: String, url: URL, headers: [String: String], payloadHash: String,
                                 date: Date = Date()) throws(ConvoyError) -> [String: String] {
        let timestamp = SigV4Timestamp(date)
        var added = ["X-Amz-Date": timestamp.dateTime]
        if let token = credentials.sessionToken {
            added["X-Amz-Security-Token"] = token
        }
        if style == .s3 {
            added["X-Amz-Content-SHA256"] = payloadHash
        }

        var toSign: [String: String] = ["host": try Self.hostHeader(url)]
        for (name, value) in headers.merging(added, uniquingKeysWith: { _, new in new }) {
            let lower = name.lowercased()
            guard !Self.unsignedHeaders.contains(lower) else { continue }
            toSign[lower] = Self.normalizedValue(value)
        }
        let names = toSign.keys.sorted()
        let signedHeaders = names.joined(separator: ";")
        let canonicalHeaders = names.map { "\($0):\(toSign[$0] ?? "")\n" }.joined()

        let canonicalRequest = [
            method.uppercased(),
            canonicalURI(url),
            Self.canonicalQuery(url),
            canonicalHeaders,
            signedHeaders,
            payloadHash,
        ].joined(separator: "\n")

        let scope = "\(timestamp.date)/\(region)/\(service)/aws4_request"
        let stringToSign = [
            "AWS4-HMAC-SHA256", timestamp.dateTime, scope, Digests.sha256Hex(canonicalRequest),
        ].joined(separator: "\n")
        let signature = Digests.hex(Digests.hmacSHA256(key: signingKey(day: timestamp.date), stringToSign))

        added["Authorization"] =
            "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), "
            + "Signature=\(signature)"
        return added
    }

    /// Convenience for bodies held in memory.
    public func signatureHeaders(method: String, url: URL, headers: [String: String], body: [UInt8],
                                 date: Date = Date()) throws(ConvoyError) -> [String: String] {
        try signatureHeaders(method: method, url: url, headers: headers, payloadHash: Digests.sha256Hex(body),
                             date: date)
    }

    private func signingKey(day: String) -> [UInt8] {
        let dateKey = Digests.hmacSHA256(key: Array("AWS4\(credentials.secretAccessKey)".utf8), day)
        let regionKey = Digests.hmacSHA256(key: dateKey, region)
        let serviceKey = Digests.hmacSHA256(key: regionKey, service)
        return Digests.hmacSHA256(key: serviceKey, "aws4_request")
    }

    private static let unsignedHeaders: Set<String> = [
        "authorization", "user-agent", "expect", "transfer-encoding", "content-length", "x-amzn-trace-id",
    ]

    /// Trimmed, inner runs of whitespace collapsed to one space.
    private static func normalizedValue(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).joined(separator: " ")
    }

    /// `host[:port]` as an HTTP client sends it: the port only when it is not the scheme's default.
    static func hostHeader(_ url: URL) throws(ConvoyError) -> String {
        guard let components = URLComponents(url: url, resolvingAgainstBaseURL: false),
              let host = components.host, !host.isEmpty
        else {
            throw ConvoyError(.invalidArgument, "cannot sign a request to \(url.absoluteString): the URL has no host")
        }
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        let scheme = components.scheme?.lowercased()
        switch (scheme, components.port) {
        case (_, nil), ("http", 80), ("https", 443):
            return bracketed
        case let (_, port?):
            return "\(bracketed):\(port)"
        }
    }

    /// Each segment decoded then encoded once (AWS rules), so that the result does not depend on which optional
    /// escapes the URL used. Other services also normalize dot segments and encode the encoded path a second time.
    func canonicalURI(_ url: URL) -> String {
        let raw = URLComponents(url: url, resolvingAgainstBaseURL: false)?.percentEncodedPath ?? ""
        let path = raw.isEmpty ? "/" : raw
        switch style {
        case .s3:
            return path.split(separator: "/", omittingEmptySubsequences: false)
                .map { AWSPercentEncoding.encode(AWSPercentEncoding.decode(String($0))) }
                .joined(separator: "/")
        case .standard:
            return AWSPercentEncoding.encode(Self.removingDotSegments(path), keepingSlash: true)
        }
    }

    /// RFC 3986 §5.2.4, plus the collapsing of repeated slashes that AWS services expect.
    private static func removingDotSegments(_ path: String) -> String {
        var output: [Substring] = []
        for segment in path.split(separator: "/") where segment != "." {
            if segment == ".." {
                _ = output.popLast()
            } else {
                output.append(segment)
            }
        }
        let leading = path.hasPrefix("/") ? "/" : ""
        let trailing = path.hasSuffix("/") && !output.isEmpty ? "/" : ""
        return leading + output.joined(separator: "/") + trailing
    }

    /// Parameters decoded and re-encoded with the AWS rules, sorted by name then value; `name` alone is `name=`.
    static func canonicalQuery(_ url: URL) -> String {
        guard let query = URLComponents(url: url, resolvingAgainstBaseURL: false)?.percentEncodedQuery,
              !query.isEmpty
        else { return "" }
        let pairs = query.split(separator: "&").map { item -> (String, String) in
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = AWSPercentEncoding.encode(AWSPercentEncoding.decode(String(parts[0])))
            let value = parts.count > 1 ? AWSPercentEncoding.encode(AWSPercentEncoding.decode(String(parts[1]))) : ""
            return (name, value)
        }
        return pairs.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }
}
