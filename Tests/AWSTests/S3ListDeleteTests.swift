@testable import AWS
import ConvoyCore
import Foundation
import XCTest

/// Listing and batch deletion at a size that needs several pages and several DeleteObjects requests.
final class S3ListDeleteTests: XCTestCase {
    /// Puts `count` one-byte objects `prefix00000`... with a few requests in flight.
    private func fill(_ client: S3Client, prefix: String, count: Int) async throws -> [String] {
        let keys = (0..<count).map { prefix + String(format: "%05d", $0) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, key) in keys.enumerated() {
                if index >= 8 { try await group.next() }
                group.addTask { try await client.putObject(key: key, bytes: [UInt8(index % 256)]) }
            }
            try await group.waitForAll()
        }
        return keys
    }

    func testListsFifteenHundredObjectsAcrossPages() async throws {
        let log = RequestLog()
        let client = try await MotoServer.freshBucket {
            $0.listPageSize = 100
            $0.onRequest = { log.record($0) }
        }
        let keys = try await fill(client, prefix: "vol1/chunk-", count: 1500)
        _ = try await fill(client, prefix: "vol2/chunk-", count: 3)

        let listed = try await client.listObjects(prefix: "vol1/")
        XCTAssertEqual(listed.map(\.key), keys)
        XCTAssertTrue(listed.allSatisfy { $0.size == 1 })
        XCTAssertEqual(log.count("ListObjectsV2"), 15, "100 keys a page")

        var pages = 0
        var seen = 0
        for try await page in client.listObjectPages(prefix: "vol1/") {
            pages += 1
            seen += page.count
            XCTAssertLessThanOrEqual(page.count, 100)
        }
        XCTAssertEqual(pages, 15)
        XCTAssertEqual(seen, 1500)
    }

    func testDeletesFifteenHundredKeysInBatches() async throws {
        let log = RequestLog()
        let client = try await MotoServer.freshBucket { $0.onRequest = { log.record($0) } }
        let keys = try await fill(client, prefix: "vol1/chunk-", count: 1500)
        let listed = try await client.listObjects(prefix: "vol1/")
        XCTAssertEqual(listed.count, 1500)

        try await client.deleteObjects(keys: keys)
        XCTAssertEqual(log.count("DeleteObjects"), 2, "at most 1,000 keys a request")
        let remaining = try await client.listObjects(prefix: "vol1/")
        XCTAssertEqual(remaining, [])
        try await client.deleteObjects(keys: [])
        XCTAssertEqual(log.count("DeleteObjects"), 2, "no request for no keys")
    }

    func testVolumePrefixesStayIndependent() async throws {
        let client = try await MotoServer.freshBucket()
        for key in ["vol1/a", "vol1/b/c", "vol10/a", "vol10/d", "vol1x"] {
            try await client.putObject(key: key, bytes: Array(key.utf8))
        }
        let vol1 = try await client.listObjects(prefix: "vol1/")
        XCTAssertEqual(vol1.map(\.key), ["vol1/a", "vol1/b/c"])

        try await client.deleteObjects(keys: vol1.map(\.key))
        let vol1After = try await client.listObjects(prefix: "vol1/")
        XCTAssertEqual(vol1After, [])
        let vol10 = try await client.listObjects(prefix: "vol10/")
        XCTAssertEqual(vol10, [S3Object(key: "vol10/a", size: 7), S3Object(key: "vol10/d", size: 7)])
        let other = try await client.getObject(key: "vol1x")
        XCTAssertEqual(other, Array("vol1x".utf8))
    }

    func testKeysWithSpacesSurviveTheListing() async throws {
        let client = try await MotoServer.freshBucket()
        try await client.putObject(key: "vol 1/a b~c", bytes: [7])
        let listed = try await client.listObjects(prefix: "vol 1/")
        XCTAssertEqual(listed, [S3Object(key: "vol 1/a b~c", size: 1)])
    }
}
