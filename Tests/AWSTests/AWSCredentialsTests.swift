import AWS
import ConvoyCore
import Foundation
import XCTest

final class AWSCredentialsTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "convoy-aws-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory + "/.aws", withIntermediateDirectories: true)
        try """
        # comment
        [default]
        aws_access_key_id = AKIADEFAULT
        aws_secret_access_key = defaultSecret/+1

        [backup]
        AWS_ACCESS_KEY_ID=AKIABACKUP
        aws_secret_access_key=backupSecret
        aws_session_token = backupToken
        ; another comment
        [broken]
        aws_access_key_id = AKIAONLY
        """.write(toFile: directory + "/.aws/credentials", atomically: true, encoding: .utf8)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func testEnvironmentComesFirst() throws {
        let credentials = try AWSCredentials.load(environment: [
            "AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "envSecret", "AWS_SESSION_TOKEN": "envToken",
            "HOME": directory,
        ])
        XCTAssertEqual(credentials,
                       AWSCredentials(accessKeyID: "AKIAENV", secretAccessKey: "envSecret", sessionToken: "envToken"))
    }

    func testSharedFileDefaultAndNamedProfile() throws {
        XCTAssertEqual(try AWSCredentials.load(environment: ["HOME": directory]),
                       AWSCredentials(accessKeyID: "AKIADEFAULT", secretAccessKey: "defaultSecret/+1"))
        XCTAssertEqual(try AWSCredentials.load(environment: ["HOME": directory, "AWS_PROFILE": "backup"]),
                       AWSCredentials(accessKeyID: "AKIABACKUP", secretAccessKey: "backupSecret",
                                      sessionToken: "backupToken"))
    }

    func testMissingOrIncompleteCredentialsAreExplained() {
        func message(_ environment: [String: String]) -> String {
            do throws(ConvoyError) {
                _ = try AWSCredentials.load(environment: environment)
                return ""
            } catch {
                XCTAssertEqual(error.kind, .invalidArgument)
                return error.message
            }
        }
        XCTAssertTrue(message(["AWS_ACCESS_KEY_ID": "AKIA", "HOME": directory])
            .contains("AWS_SECRET_ACCESS_KEY is not"))
        XCTAssertTrue(message(["HOME": directory, "AWS_PROFILE": "nosuch"]).contains("no profile [nosuch]"))
        XCTAssertTrue(message(["HOME": directory, "AWS_PROFILE": "broken"])
            .contains("needs aws_access_key_id and aws_secret_access_key"))
        XCTAssertTrue(message(["HOME": directory + "/nowhere"]).contains("cannot read AWS credentials file"))
    }

    func testSecretsNeverShowInDescriptions() {
        let credentials = AWSCredentials(accessKeyID: "AKIAVISIBLE", secretAccessKey: "TOPSECRET",
                                         sessionToken: "TOKENSECRET")
        var dumped = ""
        dump(credentials, to: &dumped)
        for text in ["\(credentials)", String(describing: credentials), String(reflecting: credentials), dumped] {
            XCTAssertTrue(text.contains("AKIAVISIBLE"), text)
            XCTAssertFalse(text.contains("TOPSECRET"), text)
            XCTAssertFalse(text.contains("TOKENSECRET"), text)
        }
    }
}
