import Synchronization
import AWS
import ConvoyCore
import Foundation
import XCTest

/// The moto server that scripts/test starts (scripts/moto-server), found through the environment it exports.
/// Without it the S3 tests fail rather than skip, so that CI cannot pass them silently; `CONVOY_SKIP_S3=1` skips.
enum MotoServer {
    struct Setup {
        var endpoint: URL
        var credentials: AWSCredentials
        var region: String
    }

    static func setup() throws -> Setup {
        let environment = ProcessInfo.processInfo.environment
        if environment["CONVOY_SKIP_S3"] == "1" {
            throw XCTSkip("CONVOY_SKIP_S3=1: S3 tests skipped")
        }
        guard let text = environment["CONVOY_TEST_S3_ENDPOINT"], let endpoint = URL(string: text) else {
            throw SetupError("CONVOY_TEST_S3_ENDPOINT is not set: run the tests through scripts/test, "
                + "which starts moto's server (scripts/moto-server) and exports it; "
                + "or set CONVOY_SKIP_S3=1 to skip the S3 tests")
        }
        let credentials = try AWSCredentials.load(environment: environment)
        return Setup(endpoint: endpoint, credentials: credentials,
                     region: environment["AWS_DEFAULT_REGION"].flatMap { $0.isEmpty ? nil : $0 } ?? "us-east-1")
    }

    /// A client for a new, empty bucket of its own; `adjust` changes the configuration first.
    static func freshBucket(_ adjust: (inout S3Client.Configuration) -> Void = { _ in }) async throws -> S3Client {
        let setup = try setup()
        let bucket = "convoy-test-" + UUID().uuidString.lowercased().prefix(13).replacingOccurrences(of: "-", with: "")
        var configuration = S3Client.Configuration(bucket: bucket, region: setup.region, endpoint: setup.endpoint,
                                                   credentials: setup.credentials)
        adjust(&configuration)
        let client = try S3Client(configuration)
        try await client.createBucket()
        return client
    }

    struct SetupError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}

/// Counts the S3 operations a client performed, through its `onRequest` hook.
final class RequestLog: Sendable {
    private let events = Mutex<[S3RequestEvent]>([])

    func record(_ event: S3RequestEvent) {
        events.withLock { $0.append(event) }
    }

    func count(_ operation: String) -> Int {
        events.withLock { $0.filter { $0.operation == operation }.count }
    }
}
