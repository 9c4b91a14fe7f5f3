import Foundation

/// Credentials written into a URL (`https://user:password@host/`) never reach a message, a log, a job record or
/// the state: convoy strips them where it reads an endpoint. S3 and EC2 requests are signed with the AWS
/// credentials; a user part of an endpoint authenticates nothing there.
public enum Redaction {
    /// `url` without its user part; the text as it was when it is no URL with one.
    public static func withoutCredentials(_ url: String) -> String {
        guard let scheme = url.range(of: "://"),
              let at = url[scheme.upperBound...].prefix(while: { $0 != "/" && $0 != "?" && $0 != "#" })
                .lastIndex(of: "@") else { return url }
        return String(url[..<scheme.upperBound]) + String(url[url.index(after: at)...])
    }

    /// The endpoint a user gave (`--s3-endpoint`, `ebs.endpoint`), as an http(s) URL without its user part.
    public static func endpoint(_ text: String, option: String) throws(ConvoyError) -> URL {
        let clean = withoutCredentials(text)
        guard let url = URL(string: clean), let scheme = url.scheme, ["http", "https"].contains(scheme),
              url.host != nil else {
            throw .invalid("\(option): '\(clean)' is not an http(s) URL")
        }
        return url
    }
}
