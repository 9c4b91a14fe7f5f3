import Synchronization
@testable import AWS
import ConvoyCore
import Foundation
import XCTest

final class S3MultipartTests: XCTestCase {
    private let mebibyte = 1024 * 1024

    func testLargeBodyGoesUpInPartsAndComesBackEqual() async throws {
        let log = RequestLog()
        let client = try await MotoServer.freshBucket {
            $0.multipartThreshold = 6 * self.mebibyte
            $0.partSize = 5 * self.mebibyte  // moto enforces S3's minimum for every part but the last
            $0.multipartConcurrency = 2
            $0.onRequest = { log.record($0) }
        }
        let bytes = TestBytes.make(count: 12 * mebibyte + 12_345)

        try await client.putObject(key: "vol1/big", bytes: bytes)
        XCTAssertEqual(log.count("CreateMultipartUpload"), 1)
        XCTAssertEqual(log.count("UploadPart"), 3)
        XCTAssertEqual(log.count("CompleteMultipartUpload"), 1)
        XCTAssertEqual(log.count("PutObject"), 0)

        let size = try await client.headObject(key: "vol1/big")
        XCTAssertEqual(size, bytes.count)
        let back = try await client.getObject(key: "vol1/big")
        XCTAssertEqual(back.count, bytes.count)
        XCTAssertTrue(back == bytes, "the object read back differs from the one written")

        // At the threshold itself: a single PUT.
        try await client.putObject(key: "vol1/small", bytes: Array(repeating: 1, count: 6 * mebibyte))
        XCTAssertEqual(log.count("PutObject"), 1)
        XCTAssertEqual(log.count("UploadPart"), 3)
    }

    func testPartSizeBelowTheS3MinimumIsRefused() throws {
        var configuration = S3Client.Configuration(bucket: "convoy-test", region: "us-east-1",
                                                   credentials: AWSCredentials(accessKeyID: "a", secretAccessKey: "b"))
        configuration.partSize = 1024
        XCTAssertThrowsError(try S3Client(configuration)) { error in
            XCTAssertEqual((error as? ConvoyError)?.kind, .invalidArgument)
        }
    }
}

extension S3MultipartTests {
    /// Cancelled after its first part, the upload is aborted: S3 keeps no parts and no object.
    func testCancelledUploadIsAborted() async throws {
        let uploading = TaskSlot()
        let client = try await MotoServer.freshBucket {
            $0.multipartThreshold = 5 * self.mebibyte
            $0.partSize = 5 * self.mebibyte
            $0.multipartConcurrency = 1
            $0.onRequest = { event in
                if event.operation == "UploadPart" { uploading.cancel() }
            }
        }
        let bytes = TestBytes.make(count: 11 * mebibyte)
        let task = Task {
            // Starts once its handle is in place, so that the hook can always cancel it.
            while !uploading.isFilled { try await Task.sleep(for: .milliseconds(1)) }
            try await client.putObject(key: "vol1/big", bytes: bytes)
        }
        uploading.fill(task)

        let result = await task.result
        XCTAssertThrowsError(try result.get()) { error in
            XCTAssertEqual((error as? ConvoyError)?.kind, .unavailable)
            XCTAssertTrue("\(error)".contains("cancelled"), "\(error)")
        }
        let size = try await client.headObject(key: "vol1/big")
        XCTAssertNil(size)
        let call = S3Call(operation: "ListMultipartUploads", key: nil, method: "GET",
                          url: try client.addressing.url(query: [("uploads", nil)]))
        let listing = try client.check(try await client.send(call), call)
        let document = try XCTUnwrap(XMLTree.parse(listing.body))
        XCTAssertEqual(document.name, "ListMultipartUploadsResult")
        XCTAssertEqual(document.children("Upload").count, 0,
                       "the upload was left open: \(String(decoding: listing.body, as: UTF8.self))")
    }
}

/// Holds a task so that a callback can cancel it.
private final class TaskSlot: Sendable {
    private let task = Mutex<Task<Void, any Error>?>(nil)
    var isFilled: Bool { task.withLock { $0 != nil } }
    func fill(_ value: Task<Void, any Error>) { task.withLock { $0 = value } }
    func cancel() { task.withLock { $0?.cancel() } }
}
