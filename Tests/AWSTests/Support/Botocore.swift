import Foundation
import XCTest

/// botocore, the signer of the AWS CLI and boto3, as the oracle for SigV4: it signs a request described in JSON at
/// a fixed instant and returns the headers it added.
enum Botocore {
    struct Request: Encodable {
        var method: String
        var url: String
        var headers: [String: String]
        var body: String  // base64
        var accessKey: String
        var secret: String
        var token: String?
        var region: String
        var service: String
        var s3: Bool
        var epochSeconds: Int
    }

    private static let script = #"""
    import base64, datetime, json, sys
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials

    spec = json.loads(sys.stdin.read())
    instant = datetime.datetime.fromtimestamp(spec["epochSeconds"], datetime.timezone.utc).replace(tzinfo=None)
    botocore.auth.get_current_datetime = lambda *args, **kwargs: instant
    request = AWSRequest(method=spec["method"], url=spec["url"], headers=spec["headers"],
                         data=base64.b64decode(spec["body"]))
    credentials = Credentials(spec["accessKey"], spec["secret"], spec.get("token"))
    if spec["s3"]:
        # Sign the payload even over https (botocore may otherwise use UNSIGNED-PAYLOAD there).
        request.context["client_config"] = Config(s3={"payload_signing_enabled": True})
        signer = botocore.auth.S3SigV4Auth(credentials, spec["service"], spec["region"])
    else:
        signer = botocore.auth.SigV4Auth(credentials, spec["service"], spec["region"])
    signer.add_auth(request)
    print(json.dumps({name.lower(): value for name, value in request.headers.items()}))
    """#

    /// The headers botocore set, names lowercased.
    static func sign(_ request: Request) throws -> [String: String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(try JSONEncoder().encode(request))
        try input.fileHandleForWriting.close()
        // Small outputs: reading to the end before waiting cannot fill a pipe buffer.
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw OracleError("python3 botocore exited \(process.terminationStatus): "
                + "\(String(decoding: err, as: UTF8.self))")
        }
        guard let headers = try JSONSerialization.jsonObject(with: out) as? [String: String] else {
            throw OracleError("botocore printed no header map: \(String(decoding: out, as: UTF8.self))")
        }
        return headers
    }

    struct OracleError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
