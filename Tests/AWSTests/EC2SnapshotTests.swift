@testable import AWS
import ConvoyCore
import Foundation
import XCTest

/// Snapshots and tags against moto's server, and EC2's parameter errors.
final class EC2SnapshotTests: XCTestCase {
    func testSnapshotCreateTagListByTagAndDelete() async throws {
        let ec2 = try MotoEC2.client()
        let name = "snap-it-" + UUID().uuidString.prefix(8)
        let volume = try await ec2.createVolume(.init(availabilityZone: "us-east-1a", sizeGiB: 1, volumeType: "gp3"))
        let snapshot = try await ec2.createSnapshot(volumeID: volume.id, description: "test \(name)",
                                                    tags: ["convoy-snapshot": name, "convoy-volume": "v1"])
        XCTAssertTrue(snapshot.id.hasPrefix("snap-"), snapshot.id)

        let found = try await ec2.describeSnapshots(filters: ["tag:convoy-snapshot": [name]])
        XCTAssertEqual(found.map(\.id), [snapshot.id])
        XCTAssertEqual(found.first?.volumeID, volume.id)
        XCTAssertEqual(found.first?.state, "completed")
        XCTAssertEqual(found.first?.tags["convoy-volume"], "v1")
        let notYetTagged = try await ec2.describeSnapshots(filters: ["tag:convoy-snapshot": [name],
                                                                     "tag:convoy-backup": ["true"]])
        XCTAssertTrue(notYetTagged.isEmpty)

        try await ec2.createTags([snapshot.id], ["convoy-backup": "true"])
        let tagged = try await ec2.describeSnapshots(filters: ["tag:convoy-snapshot": [name],
                                                               "tag:convoy-backup": ["true"]])
        XCTAssertEqual(tagged.map(\.id), [snapshot.id])

        let restored = try await ec2.createVolume(.init(availabilityZone: "us-east-1a", sizeGiB: nil, volumeType: "gp3",
                                                        snapshotID: snapshot.id))
        XCTAssertEqual(restored.snapshotID, snapshot.id)
        XCTAssertEqual(restored.sizeGiB, 1, "a volume from a snapshot takes the snapshot's size")

        try await ec2.deleteSnapshot(snapshot.id)
        let gone = try await ec2.snapshot(snapshot.id)
        XCTAssertNil(gone)
        try await ec2.deleteVolume(restored.id)
        try await ec2.deleteVolume(volume.id)
    }

    /// A tag specification without tags: EC2 (and moto) answer InvalidParameterValue.
    func testInvalidParameterValueSurfacesCodeMessageAndRequestID() async throws {
        let ec2 = try MotoEC2.client()
        var parameters = EC2Parameters()
        parameters["AvailabilityZone"] = "us-east-1a"
        parameters["Size"] = "1"
        parameters["TagSpecification.1.ResourceType"] = "volume"
        do throws(ConvoyError) {
            _ = try await ec2.call("CreateVolume", parameters)
            XCTFail("an empty tag specification was accepted")
        } catch {
            XCTAssertEqual(error.kind, .invalidArgument)
            XCTAssertTrue(error.message.hasPrefix("EC2 CreateVolume: HTTP 400 InvalidParameterValue: "
                                                  + "Tag specification must have at least one tag"),
                          error.message)
            XCTAssertTrue(error.message.contains("(request id "), error.message)
        }
    }
}
