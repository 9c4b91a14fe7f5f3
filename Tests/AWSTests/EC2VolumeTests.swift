import AWS
import ConvoyCore
import Foundation
import XCTest

/// The EC2 client's volume calls against moto's server, signature checks on.
final class EC2VolumeTests: XCTestCase {
    func testCreateTagDescribeAttachDetachDeleteVolume() async throws {
        let ec2 = try MotoEC2.client()
        let instance = try await MotoEC2.runInstance(ec2)
        let name = "it-" + UUID().uuidString.prefix(8)
        let created = try await ec2.createVolume(.init(availabilityZone: "us-east-1a", sizeGiB: 2, volumeType: "gp3",
                                                       encrypted: true, tags: ["Name": name, "convoy-volume": name]))
        XCTAssertTrue(created.id.hasPrefix("vol-"), created.id)

        let byTag = try await ec2.describeVolumes(filters: ["tag:convoy-volume": [name]])
        XCTAssertEqual(byTag.map(\.id), [created.id])
        let volume = try XCTUnwrap(byTag.first)
        XCTAssertEqual(volume.sizeGiB, 2)
        XCTAssertEqual(volume.availabilityZone, "us-east-1a")
        XCTAssertEqual(volume.volumeType, "gp3")
        XCTAssertTrue(volume.encrypted)
        XCTAssertEqual(volume.tags["Name"], name)
        XCTAssertEqual(volume.state, "available")

        try await ec2.attachVolume(created.id, instanceID: instance, device: "/dev/sdf")
        let attached = try await ec2.volume(created.id)
        XCTAssertEqual(attached?.attachments.map { [$0.instanceID, $0.device, $0.state] },
                       [[instance, "/dev/sdf", "attached"]])
        let onInstance = try await ec2.describeVolumes(filters: ["attachment.instance-id": [instance]]).map(\.id)
        XCTAssertTrue(onInstance.contains(created.id), "\(onInstance)")
        let devices = try await ec2.instanceDeviceNames(instance)
        XCTAssertTrue(devices.contains("/dev/sda1"), "the root device is in use: \(devices)")
        // The controller finds a host's instance by the tag its convoy puts on it.
        try await ec2.createTags([instance], ["convoy-host": name])
        let tagged = try await ec2.describeInstances(filters: ["tag:convoy-host": [name]])
        XCTAssertEqual(tagged.map(\.id), [instance])
        XCTAssertEqual(tagged.first?.state, "running")
        XCTAssertTrue(tagged.first?.availabilityZone.hasPrefix("us-east-1") == true, "\(tagged)")
        let untagged = try await ec2.describeInstances(filters: ["tag:convoy-host": [name + "-other"]])
        XCTAssertEqual(untagged, [])

        try await ec2.detachVolume(created.id, instanceID: instance)
        let detached = try await ec2.volume(created.id)
        XCTAssertEqual(detached?.state, "available")
        XCTAssertEqual(detached?.attachments.filter { $0.state != "detached" }.count, 0)

        try await ec2.deleteVolume(created.id)
        let gone = try await ec2.volume(created.id)
        XCTAssertNil(gone)
    }

    func testMissingVolumeIsNotFoundWithCodeAndRequestID() async throws {
        let ec2 = try MotoEC2.client()
        do throws(ConvoyError) {
            try await ec2.deleteVolume("vol-0000000000000000a")
            XCTFail("deleting a volume that does not exist succeeded")
        } catch {
            XCTAssertEqual(error.kind, .notFound)
            XCTAssertTrue(error.message.contains("EC2 DeleteVolume: HTTP 400 InvalidVolume.NotFound"), error.message)
            XCTAssertTrue(error.message.contains("(request id "), error.message)
            XCTAssertFalse(error.message.contains("request id none"), error.message)
        }
    }

    func testWrongSecretIsRefusedAndNotShown() async throws {
        let ec2 = try MotoEC2.client(secret: "not-the-secret-4711")
        do throws(ConvoyError) {
            _ = try await ec2.describeVolumes(filters: ["tag:convoy-volume": ["x"]])
            XCTFail("a request signed with the wrong secret was accepted")
        } catch {
            XCTAssertEqual(error.kind, .driverFailure)
            XCTAssertTrue(error.message.contains("SignatureDoesNotMatch") || error.message.contains("AuthFailure"),
                          error.message)
            XCTAssertTrue(error.message.contains("HTTP 403") || error.message.contains("HTTP 401"), error.message)
            XCTAssertFalse(error.message.contains("not-the-secret-4711"), error.message)
        }
    }
}
