import ConvoyCore
import Foundation

/// An access key pair, with the session token of temporary credentials. The secret and the token never appear in
/// `description`, `debugDescription` or a mirror (`dump`), so logging a value of this type cannot leak them.
public struct AWSCredentials: Sendable, Equatable {
    public let accessKeyID: String
    public let secretAccessKey: String
    public let sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    /// The standard chain, reduced to what convoy supports: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
    /// `AWS_SESSION_TOKEN`, else the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default
    /// `~/.aws/credentials`) at profile `AWS_PROFILE` (default `default`).
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(ConvoyError) -> AWSCredentials
    {
        if let fromEnvironment = try fromEnvironment(environment) {
            return fromEnvironment
        }
        let profile = nonEmpty(environment["AWS_PROFILE"]) ?? "default"
        guard let path = sharedCredentialsPath(environment) else {
            throw ConvoyError(.invalidArgument, "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                + "or set HOME so that ~/.aws/credentials can be read")
        }
        return try fromSharedFile(path: path, profile: profile)
    }

    /// Credentials from the environment, nil when `AWS_ACCESS_KEY_ID` is not set. Half a key pair is an error
    /// rather than a reason to fall back to the file: the operator meant the environment.
    public static func fromEnvironment(_ environment: [String: String]) throws(ConvoyError) -> AWSCredentials? {
        let keyID = nonEmpty(environment["AWS_ACCESS_KEY_ID"])
        let secret = nonEmpty(environment["AWS_SECRET_ACCESS_KEY"])
        switch (keyID, secret) {
        case (nil, nil):
            return nil
        case let (keyID?, secret?):
            return AWSCredentials(accessKeyID: keyID, secretAccessKey: secret,
                                  sessionToken: nonEmpty(environment["AWS_SESSION_TOKEN"]))
        case (nil, _?):
            throw ConvoyError(.invalidArgument, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; set both")
        case (_?, nil):
            throw ConvoyError(.invalidArgument, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both")
        }
    }

    /// Credentials of one profile of a shared credentials file (INI: `[profile]`, `key = value`).
    public static func fromSharedFile(path: String, profile: String) throws(ConvoyError) -> AWSCredentials {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConvoyError(.invalidArgument, "cannot read AWS credentials file \(path): "
                + "\(error.localizedDescription); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead")
        }
        guard let values = SharedCredentialsFile.parse(text)[profile] else {
            throw ConvoyError(.invalidArgument, "AWS credentials file \(path) has no profile [\(profile)]")
        }
        guard let keyID = nonEmpty(values["aws_access_key_id"]),
              let secret = nonEmpty(values["aws_secret_access_key"])
        else {
            throw ConvoyError(.invalidArgument,
                              "profile [\(profile)] of \(path) needs aws_access_key_id and aws_secret_access_key")
        }
        let token = nonEmpty(values["aws_session_token"]) ?? nonEmpty(values["aws_security_token"])
        return AWSCredentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: token)
    }

    private static func sharedCredentialsPath(_ environment: [String: String]) -> String? {
        if let explicit = nonEmpty(environment["AWS_SHARED_CREDENTIALS_FILE"]) {
            return explicit
        }
        return nonEmpty(environment["HOME"]).map { $0 + "/.aws/credentials" }
    }

    private static func nonEmpty(_ value: String?) -> String? {
        guard let trimmed = value?.trimmingCharacters(in: .whitespaces), !trimmed.isEmpty else { return nil }
        return trimmed
    }
}

extension AWSCredentials: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    // The access key ID identifies the key (it shows in CloudTrail); only the secret and the token are redacted.
    public var description: String {
        "AWSCredentials(accessKeyID: \(accessKeyID), secretAccessKey: <redacted>, "
            + "sessionToken: \(sessionToken == nil ? "none" : "<redacted>"))"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(self, children: [
            "accessKeyID": accessKeyID,
            "secretAccessKey": "<redacted>",
            "sessionToken": sessionToken == nil ? "none" : "<redacted>",
        ])
    }
}
