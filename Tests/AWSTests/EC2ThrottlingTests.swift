import AWS
import ConvoyCore
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// moto never throttles: a tiny local server answers EC2's `RequestLimitExceeded` (HTTP 503) to the first N
/// requests, each with its own request id, then an empty DescribeVolumes answer.
final class EC2ThrottlingTests: XCTestCase {
    private static let handler = #"""
    throttles = int(sys.argv[1])
    seen = [0]
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen[0] += 1
            if seen[0] <= throttles:
                status, body = 503, ("<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
                                     "<Message>Request limit exceeded.</Message></Error></Errors>"
                                     "<RequestID>throttle-%d</RequestID></Response>" % seen[0])
            else:
                status, body = 200, ("<DescribeVolumesResponse><requestId>ok</requestId>"
                                     "<volumeSet/></DescribeVolumesResponse>")
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
    """#

    private var server: PythonServer?

    override func tearDown() {
        server = nil  // XCTest keeps test case objects to the end of the run; the server must not live that long
    }

    private func client(throttles: Int, attempts: Int) throws -> EC2Client {
        let server = try PythonServer(handler: Self.handler, arguments: ["\(throttles)"])
        self.server = server
        let port = server.port
        var configuration = EC2Client.Configuration(
            region: "us-east-1", endpoint: URL(string: "http://127.0.0.1:\(port)"),
            credentials: AWSCredentials(accessKeyID: "AKIATEST", secretAccessKey: "never-shown"))
        configuration.retry = RetryPolicy(maxAttempts: attempts, baseDelay: .milliseconds(20),
                                          maxDelay: .milliseconds(50))
        return try EC2Client(configuration)
    }

    func testThrottlingIsRetriedUntilItPasses() async throws {
        let ec2 = try client(throttles: 2, attempts: 4)
        let volumes = try await ec2.describeVolumes(filters: ["tag:convoy-volume": ["x"]])
        XCTAssertEqual(volumes, [])
    }

    func testPersistentThrottlingSurfacesCodeRequestIDAndAttempts() async throws {
        let ec2 = try client(throttles: 100, attempts: 3)
        do throws(ConvoyError) {
            _ = try await ec2.describeVolumes(filters: ["tag:convoy-volume": ["x"]])
            XCTFail("a throttled call succeeded")
        } catch {
            XCTAssertEqual(error.kind, .driverFailure)
            XCTAssertEqual(error.message, "EC2 DescribeVolumes: HTTP 503 RequestLimitExceeded: "
                + "Request limit exceeded. (request id throttle-3) after 3 attempts")
            XCTAssertFalse(error.message.contains("never-shown"))
        }
    }
}
