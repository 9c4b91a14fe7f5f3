import AWS
import ConvoyCore
import Foundation
import XCTest

/// Single objects against moto's server with signature checks on.
final class S3ObjectTests: XCTestCase {
    func testWrongSecretIsRefusedWithSignatureDoesNotMatch() async throws {
        let client = try await MotoServer.freshBucket()
        try await client.putObject(key: "vol1/a", bytes: [1])
        let real = client.configuration.credentials
        let wrongSecret = "wrong" + real.secretAccessKey.dropFirst(5)
        var configuration = client.configuration
        configuration.credentials = AWSCredentials(accessKeyID: real.accessKeyID, secretAccessKey: wrongSecret)
        let impostor = try S3Client(configuration)

        do throws(ConvoyError) {
            _ = try await impostor.getObject(key: "vol1/a")
            XCTFail("a request signed with a wrong secret succeeded: signatures are not being checked")
        } catch {
            XCTAssertEqual(error.kind, .driverFailure)
            for part in ["S3 GetObject", "s3://\(configuration.bucket)/vol1/a", "HTTP 403", "SignatureDoesNotMatch",
                         "request id"] {
                XCTAssertTrue(error.message.contains(part), "'\(part)' missing from: \(error.message)")
            }
            XCTAssertFalse(error.message.contains(wrongSecret), error.message)
            XCTAssertFalse(error.message.contains(real.secretAccessKey), error.message)
        }
    }

    func testBinaryRoundTrip() async throws {
        let client = try await MotoServer.freshBucket()
        let bytes: [UInt8] = Array(0...255) + TestBytes.make(count: 300_000)
        let key = "vol1/dir one/chunk~0001.bin"

        try await client.putObject(key: key, bytes: bytes)
        let size = try await client.headObject(key: key)
        XCTAssertEqual(size, bytes.count)
        let back = try await client.getObject(key: key)
        XCTAssertEqual(back, bytes)

        try await client.putObject(key: "vol1/empty", bytes: [])
        let emptySize = try await client.headObject(key: "vol1/empty")
        XCTAssertEqual(emptySize, 0)
        let empty = try await client.getObject(key: "vol1/empty")
        XCTAssertEqual(empty, [])

        try await client.deleteObject(key: key)
        let gone = try await client.headObject(key: key)
        XCTAssertNil(gone)
        try await client.deleteObject(key: key)  // deleting again is not an error, as in S3
    }

    func testMissingKeyAndBucketAreNotFound() async throws {
        let client = try await MotoServer.freshBucket()
        do throws(ConvoyError) {
            _ = try await client.getObject(key: "vol1/missing")
            XCTFail("got an object that was never put")
        } catch {
            XCTAssertEqual(error.kind, .notFound)
            XCTAssertTrue(error.message.contains("NoSuchKey"), error.message)
            XCTAssertTrue(error.message.contains("HTTP 404"), error.message)
            XCTAssertTrue(error.message.contains("vol1/missing"), error.message)
        }
        let absent = try await client.headObject(key: "vol1/missing")
        XCTAssertNil(absent)

        var configuration = client.configuration
        configuration.bucket = client.configuration.bucket + "-none"
        do throws(ConvoyError) {
            _ = try await S3Client(configuration).getObject(key: "vol1/a")
            XCTFail("got an object from a bucket that does not exist")
        } catch {
            XCTAssertEqual(error.kind, .notFound)
            XCTAssertTrue(error.message.contains("NoSuchBucket"), error.message)
        }
    }

    func testCreateBucketTwiceIsFine() async throws {
        let client = try await MotoServer.freshBucket()
        try await client.createBucket()
    }
}
