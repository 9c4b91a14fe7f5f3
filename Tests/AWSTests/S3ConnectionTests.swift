import AWS
import ConvoyCore
import Foundation
import XCTest

/// Endpoints that cannot answer: errors are `.unavailable`, retries are bounded, requests time out.
final class S3ConnectionTests: XCTestCase {
    private func client(port: Int, idleTimeout: TimeInterval = 30, timeLimit: Duration = .seconds(30),
                        attempts: Int) throws -> S3Client {
        var configuration = S3Client.Configuration(
            bucket: "convoy-test", region: "us-east-1", endpoint: URL(string: "http://127.0.0.1:\(port)"),
            credentials: AWSCredentials(accessKeyID: "AKIATEST", secretAccessKey: "never-shown"))
        configuration.idleTimeout = idleTimeout
        configuration.requestTimeLimit = timeLimit
        configuration.retry = RetryPolicy(maxAttempts: attempts, baseDelay: .milliseconds(50),
                                          maxDelay: .milliseconds(100), maxTotalTime: .seconds(20))
        return try S3Client(configuration)
    }

    /// A port with no listener: bound by us, then closed.
    private func closedPort() throws -> Int {
        try SilentListener().port
    }

    func testRefusedConnectionIsUnavailableAfterBoundedRetries() async throws {
        let client = try client(port: try closedPort(), attempts: 3)
        do throws(ConvoyError) {
            _ = try await client.getObject(key: "vol1/a")
            XCTFail("a request to a closed port succeeded")
        } catch {
            XCTAssertEqual(error.kind, .unavailable)
            XCTAssertTrue(error.message.contains("S3 GetObject s3://convoy-test/vol1/a"), error.message)
            XCTAssertTrue(error.message.contains("after 3 attempts"), error.message)
            XCTAssertFalse(error.message.contains("never-shown"), error.message)
        }
    }

    func testHangingServerTimesOut() async throws {
        let listener = try SilentListener()
        let client = try client(port: listener.port, idleTimeout: 1, attempts: 2)
        let clock = ContinuousClock()
        let start = clock.now
        do throws(ConvoyError) {
            _ = try await client.headObject(key: "vol1/a")
            XCTFail("a request to a server that never answers succeeded")
        } catch {
            XCTAssertEqual(error.kind, .unavailable)
            XCTAssertTrue(error.message.contains("timed out"), error.message)
        }
        let elapsed = clock.now - start
        XCTAssertLessThan(elapsed, .seconds(10), "two attempts of 1 s each took \(elapsed)")
        withExtendedLifetime(listener) {}
    }

    func testTimeLimitBoundsARequestThatIsNeverAnswered() async throws {
        let listener = try SilentListener()
        let client = try client(port: listener.port, idleTimeout: 60, timeLimit: .milliseconds(500), attempts: 1)
        let clock = ContinuousClock()
        let start = clock.now
        do throws(ConvoyError) {
            _ = try await client.getObject(key: "vol1/a")
            XCTFail("a request to a server that never answers succeeded")
        } catch {
            XCTAssertEqual(error.kind, .unavailable)
            XCTAssertTrue(error.message.contains("no complete answer within"), error.message)
        }
        XCTAssertLessThan(clock.now - start, .seconds(5))
        withExtendedLifetime(listener) {}
    }
}
