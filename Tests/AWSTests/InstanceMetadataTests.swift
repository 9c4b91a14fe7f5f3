import AWS
import ConvoyCore
import Foundation
import XCTest

/// IMDSv2 against moto's metadata service (static: `i-fake` in us-east-1a), and an endpoint where nothing listens.
final class InstanceMetadataTests: XCTestCase {
    func testIdentityFromIMDSv2() async throws {
        let setup = try MotoServer.setup()
        let identity = try await InstanceMetadata(endpoint: setup.endpoint).identity()
        XCTAssertEqual(identity, .init(instanceID: "i-fake", region: "us-east-1", availabilityZone: "us-east-1a"))
    }

    func testNoMetadataServiceSaysWhichOptionsToGive() async throws {
        let port = try SilentListener().port
        do throws(ConvoyError) {
            _ = try await InstanceMetadata(endpoint: URL(string: "http://127.0.0.1:\(port)")).identity()
            XCTFail("an identity came from nowhere")
        } catch {
            XCTAssertEqual(error.kind, .unavailable)
            XCTAssertTrue(error.message.contains("ebs.instanceid, ebs.region and ebs.az"), error.message)
        }
    }
}
