@testable import AWS
import ConvoyCore
import Foundation
import XCTest

/// Request bodies larger than a slice go to the connection a slice at a time: each attempt must send the whole body
/// again, byte for byte, with the length it announced.
final class S3BodySliceTests: XCTestCase {
    /// A server that cuts the first PUT off after half its body (the connection closed, as a reset would), keeps what
    /// the next attempt sends, and answers a GET with it.
    func testABodyCutOffOnTheFirstAttemptIsSentWholeOnTheNext() async throws {
        let server = try PythonServer(handler: #"""
        class Handler(BaseHTTPRequestHandler):
            puts = 0
            stored = {}
            def do_PUT(self):
                Handler.puts += 1
                length = int(self.headers["Content-Length"])
                if Handler.puts == 1:
                    self.rfile.read(length // 2)
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                Handler.stored[self.path] = self.rfile.read(length)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
            def do_GET(self):
                data = Handler.stored.get(self.path, b"")
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-puts", str(Handler.puts))
                self.end_headers()
                self.wfile.write(data)
        """#)
        var configuration = S3Client.Configuration(
            bucket: "convoy-test", region: "us-east-1", endpoint: URL(string: "http://127.0.0.1:\(server.port)"),
            credentials: AWSCredentials(accessKeyID: "AKIATEST", secretAccessKey: "never-shown"))
        configuration.retry = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20), maxDelay: .milliseconds(50),
                                          maxTotalTime: .seconds(20))
        let client = try S3Client(configuration)
        // Neither a multiple of the slice nor under it.
        let bytes = TestBytes.make(count: 5 * BodySlices.sliceSize + 4_321)

        try await client.putObject(key: "vol1/pack", body: Data(bytes))
        let call = S3Call(operation: "GetObject", key: "vol1/pack", method: "GET",
                          url: try client.addressing.url(key: "vol1/pack"))
        let answer = try client.check(try await client.send(call), call)
        XCTAssertEqual(answer.header("x-puts"), "2", "the first attempt was not cut off, or was not retried")
        XCTAssertEqual(answer.body.count, bytes.count)
        XCTAssertTrue([UInt8](answer.body) == bytes, "the body stored by the second attempt differs from the one sent")
        withExtendedLifetime(server) {}
    }

    func testSlicesCoverTheBodyInOrder() async {
        let bytes = TestBytes.make(count: 2 * BodySlices.sliceSize + 1)
        var sizes: [Int] = []
        var joined: [UInt8] = []
        for await slice in BodySlices(Data(bytes)[1...]) {
            sizes.append(slice.readableBytes)
            joined += slice.readableBytesView
        }
        XCTAssertEqual(sizes, [BodySlices.sliceSize, BodySlices.sliceSize])
        XCTAssertEqual(joined, Array(bytes[1...]))
    }
}
