@testable import AWS
import ConvoyCore
import Foundation
import XCTest

/// The signer against botocore, byte for byte, on requests that exercise each canonicalization rule.
final class SigV4SignerTests: XCTestCase {
    private let instant = 1_715_000_000  // 2024-05-06T12:53:20Z
    private let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE",
                                             secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")

    /// Signs with both and compares every header botocore added.
    private func assertMatchesBotocore(method: String, url: URL, headers: [String: String] = [:], body: [UInt8] = [],
                                       credentials: AWSCredentials? = nil, region: String = "us-east-1",
                                       service: String = "s3", file: StaticString = #filePath,
                                       line: UInt = #line) throws {
        let credentials = credentials ?? self.credentials
        let signer = SigV4Signer(credentials: credentials, region: region, service: service)
        let ours = try signer.signatureHeaders(method: method, url: url, headers: headers, body: body,
                                               date: Date(timeIntervalSince1970: TimeInterval(instant)))
        let theirs = try Botocore.sign(.init(
            method: method, url: url.absoluteString, headers: headers, body: Data(body).base64EncodedString(),
            accessKey: credentials.accessKeyID, secret: credentials.secretAccessKey, token: credentials.sessionToken,
            region: region, service: service, s3: service == "s3", epochSeconds: instant))

        XCTAssertEqual(ours["Authorization"], theirs["authorization"], "Authorization of \(method) \(url)",
                       file: file, line: line)
        XCTAssertEqual(ours["X-Amz-Date"], theirs["x-amz-date"], file: file, line: line)
        XCTAssertEqual(ours["X-Amz-Content-SHA256"], theirs["x-amz-content-sha256"], file: file, line: line)
        XCTAssertEqual(ours["X-Amz-Security-Token"], theirs["x-amz-security-token"], file: file, line: line)
    }

    private func s3URL(_ key: String?, query: [(String, String?)] = [],
                       endpoint: String? = "http://127.0.0.1:9000") throws -> URL {
        try S3Addressing(bucket: "convoy-bucket", region: "us-east-1", endpoint: endpoint.flatMap(URL.init(string:)))
            .url(key: key, query: query)
    }

    func testPutWithSpacesAndSpecialCharactersInTheKey() throws {
        let key = "backups/my volume/snap 1 (copy)+x=y&z!*'@$,;:ü€~_-.bin"
        let url = try s3URL(key)
        XCTAssertTrue(url.absoluteString.hasSuffix("/convoy-bucket/backups/my%20volume/snap%201%20%28copy%29"
                                                   + "%2Bx%3Dy%26z%21%2A%27%40%24%2C%3B%3A%C3%BC%E2%82%AC~_-.bin"),
                      url.absoluteString)
        try assertMatchesBotocore(method: "PUT", url: url, headers: ["Content-Type": "application/octet-stream"],
                                  body: Array(0...255))
    }

    func testListingQueryIsSortedAndEncoded() throws {
        let url = try s3URL(nil, query: [
            ("list-type", "2"), ("prefix", "vol 1/a+b"), ("max-keys", "100"), ("encoding-type", "url"),
            ("continuation-token", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=="),
        ])
        try assertMatchesBotocore(method: "GET", url: url)
    }

    func testValuelessSubresourceAndContentMD5() throws {
        let body = Array(#"<Delete><Quiet>true</Quiet><Object><Key>a b</Key></Object></Delete>"#.utf8)
        try assertMatchesBotocore(method: "POST", url: try s3URL(nil, query: [("delete", nil)]),
                                  headers: ["Content-Type": "application/xml", "Content-MD5": Digests.md5Base64(body)],
                                  body: body)
    }

    func testVirtualHostedHTTPSWithSessionTokenAndOtherRegion() throws {
        let url = try S3Addressing(bucket: "convoy-bucket", region: "eu-west-3", endpoint: nil)
            .url(key: "vol1/chunk 0001", query: [("partNumber", "3"), ("uploadId", "a~b/c+d")])
        XCTAssertEqual(url.host, "convoy-bucket.s3.eu-west-3.amazonaws.com")
        let temporary = AWSCredentials(accessKeyID: "ASIAEXAMPLE", secretAccessKey: "c2VjcmV0/+x",
                                       sessionToken: "FwoGZXIvYXdzEJr//////////wEaDOpaque+token/value==")
        try assertMatchesBotocore(method: "PUT", url: url, headers: ["Content-Type": "application/octet-stream"],
                                  body: Array("part".utf8), credentials: temporary, region: "eu-west-3")
    }

    func testHeaderValuesAreTrimmedAndCollapsed() throws {
        try assertMatchesBotocore(method: "PUT", url: try s3URL("k"),
                                  headers: ["Content-Type": "  application/octet-stream ",
                                            "X-Amz-Meta-Note": "a   b \t c"],
                                  body: [1, 2, 3])
    }

    func testOtherServicesNormalizeAndEncodeThePathAgain() throws {
        let url = try XCTUnwrap(URL(string: "https://example.us-east-1.amazonaws.com/a%20b/./c/../d%2Fe/"
                                            + "?Action=Describe&Filter.1.Name=tag%3Aname"))
        try assertMatchesBotocore(method: "GET", url: url, service: "ec2")
        let form = Array("Action=DescribeVolumes&Version=2016-11-15".utf8)
        try assertMatchesBotocore(method: "POST",
                                  url: try XCTUnwrap(URL(string: "https://ec2.us-east-1.amazonaws.com/")),
                                  headers: ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"],
                                  body: form, service: "ec2")
    }

    func testKnownVector() throws {
        // A fixed expectation as well, so that a change of both signer and oracle cannot go unnoticed.
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "s3")
        let headers = try signer.signatureHeaders(method: "GET", url: try s3URL("k"), headers: [:], body: [],
                                                  date: Date(timeIntervalSince1970: TimeInterval(instant)))
        XCTAssertEqual(headers["X-Amz-Date"], "20240506T125320Z")
        XCTAssertEqual(headers["X-Amz-Content-SHA256"],
                       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertTrue(headers["Authorization"]?.hasPrefix(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240506/us-east-1/s3/aws4_request, "
                + "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=") == true)
    }

    func testKeysThatHTTPClientsWouldRewriteAreRefused() throws {
        for key in ["", "a/../b", "./a", "a/.", String(repeating: "k", count: 1025)] {
            XCTAssertThrowsError(try s3URL(key), "key \(key.prefix(20))") { error in
                XCTAssertEqual((error as? ConvoyError)?.kind, .invalidArgument)
            }
        }
        XCTAssertNoThrow(try s3URL("a..b/.c/d."))
    }
}
