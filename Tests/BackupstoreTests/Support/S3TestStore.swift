import AWS
@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest

/// A fresh bucket on the moto server that scripts/test starts (signature checks on), as an S3ObjectStore under a
/// key prefix. Fails rather than skips when the server is missing, unless CONVOY_SKIP_S3=1.
enum S3TestStore {
    struct Made {
        var store: S3ObjectStore
        var client: S3Client
        var bucket: String
    }

    static func make(prefix: String = "backups/team") async throws -> Made {
        let environment = ProcessInfo.processInfo.environment
        if environment["CONVOY_SKIP_S3"] == "1" { throw XCTSkip("CONVOY_SKIP_S3=1") }
        guard let text = environment["CONVOY_TEST_S3_ENDPOINT"], let endpoint = URL(string: text) else {
            throw FixtureError("CONVOY_TEST_S3_ENDPOINT is not set: "
                + "run the tests through scripts/test, which starts moto's server")
        }
        let credentials = try AWSCredentials.load(environment: environment)
        let region = environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        let bucket = "convoy-bs-" + UUID().uuidString.lowercased().prefix(12).replacingOccurrences(of: "-", with: "")
        let client = try S3Client(.init(bucket: bucket, region: region, endpoint: endpoint, credentials: credentials))
        try await client.createBucket()
        let store = try S3ObjectStore(bucket: bucket, region: region, prefix: prefix, endpoint: endpoint,
                                      credentials: credentials)
        return Made(store: store, client: client, bucket: bucket)
    }
}
