import ConvoyCore
@testable import Drivers
import XCTest

/// The ebs driver's options, checked before EC2 is asked anything.
final class EBSOptionsTests: XCTestCase {
    private let root = "/tmp/convoy-ebs-options"

    private func configuration(_ options: [String: String] = [:]) throws -> EBSConfiguration {
        try EBSConfiguration(root: root, options: options)
    }

    private func message(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch { return "\(error)" }
    }

    private func volume(_ options: [String: String], size: UInt64? = nil,
                        defaults: [String: String] = [:]) throws -> EBSVolumeOptions {
        try EBSVolumeOptions(DriverVolume(name: "v", size: size, options: options),
                             configuration: configuration(defaults))
    }

    func testDefaults() throws {
        let defaults = try configuration()
        XCTAssertEqual(defaults.defaultVolumeSize, 4 << 30)
        XCTAssertEqual(defaults.defaultVolumeType, "gp3")
        XCTAssertEqual(defaults.deviceDirectory, "/dev/disk/by-id")
        XCTAssertFalse(defaults.defaultEncrypted)
        XCTAssertEqual(defaults.attachTimeout, .seconds(300))
        let options = try volume([:])
        XCTAssertEqual(options.sizeGiB, 4)
        XCTAssertEqual(options.volumeType, "gp3")
        XCTAssertEqual(options.filesystem, "ext4")
        XCTAssertFalse(options.encrypted)
    }

    func testDriverOptionsAreValidated() {
        XCTAssertTrue(message { _ = try configuration(["ebs.defaultvolumetype": "gp9"]) }
            .contains("'gp9' is not an EBS volume type"))
        XCTAssertTrue(message { _ = try configuration(["ebs.defaultencrypted": "maybe"]) }
            .contains("not true or false"))
        XCTAssertTrue(message { _ = try configuration(["ebs.devicedir": "dev/disk"]) }
            .contains("must be an absolute path"))
        XCTAssertTrue(message { _ = try configuration(["ebs.endpoint": "ftp://x"]) }.contains("is not an http(s) URL"))
        XCTAssertTrue(message { _ = try configuration(["ebs.instanceid": "fake"]) }.contains("not an instance id"))
        XCTAssertTrue(message { _ = try configuration(["ebs.attachtimeout": "0"]) }.contains("between 1 and 3600"))
        XCTAssertTrue(message { _ = try configuration(["ebs.leasettl": "2"]) }.contains("between 3 and 3600"))
        XCTAssertEqual(try configuration(["ebs.leasettl": "45s"]).leaseTTL, .seconds(45))
        XCTAssertEqual(try configuration().leaseTTL, .seconds(30))
    }

    func testDefaultEncryptionAndKeyAreApplied() throws {
        let encrypted = try volume([:], defaults: ["ebs.defaultencrypted": "true", "ebs.defaultkmskeyid": "alias/k"])
        XCTAssertTrue(encrypted.encrypted)
        XCTAssertEqual(encrypted.kmsKeyID, "alias/k")
        let plain = try volume(["encrypted": "false"],
                               defaults: ["ebs.defaultencrypted": "true", "ebs.defaultkmskeyid": "alias/k"])
        XCTAssertFalse(plain.encrypted)
        XCTAssertNil(plain.kmsKeyID, "no key for an unencrypted volume")
        XCTAssertTrue(try volume(["kmskeyid": "alias/mine"]).encrypted, "a key implies encryption")
        XCTAssertTrue(message { _ = try volume(["kmskeyid": "k", "encrypted": "false"]) }
            .contains("needs encrypted=true"))
    }

    func testVolumeOptionsFollowEBSRules() throws {
        XCTAssertEqual(try volume([:], size: 1_500 << 20).sizeGiB, 2, "rounded up to whole GiB")
        XCTAssertEqual(try volume(["type": "io2", "iops": "4000"], size: 8 << 30).iops, 4000)
        XCTAssertTrue(message { _ = try volume(["type": "io1"], size: 8 << 30) }.contains("io1 volumes need iops"))
        XCTAssertTrue(message { _ = try volume(["type": "gp2", "throughput": "200"]) }
            .contains("only gp3 volumes take a throughput"))
        XCTAssertTrue(message { _ = try volume(["iops": "-1"]) }.contains("not a positive whole number"))
        XCTAssertTrue(message { _ = try volume(["type": "sc1"], size: 1 << 30) }
            .contains("sc1 volumes are 125 to 16384 GiB"))
        XCTAssertTrue(message { _ = try volume(["fs": "btrfs"]) }.contains("'btrfs' is not one of ext4, xfs"))
        XCTAssertTrue(message { _ = try volume(["id": "v-1"]) }.contains("not an EBS volume id"))
        XCTAssertTrue(message { _ = try volume(["id": "vol-1", "type": "gp2"]) }.contains("used as it is"))
        XCTAssertNil(try volume(["id": "vol-1"]).sizeGiB)
        XCTAssertNil(try volume(["snapshot": "snap-1"]).sizeGiB, "the snapshot decides the size")
        XCTAssertEqual(try volume(["snapshot": "snap-1"], size: 10 << 30).sizeGiB, 10)
    }

    func testBackupURLs() throws {
        XCTAssertEqual(try EBSBackupURL.parse("ebs://us-east-1/snap-0abc"),
                       EBSBackupURL(region: "us-east-1", snapshotID: "snap-0abc"))
        for bad in ["ebs://us-east-1", "ebs:///snap-1", "ebs://us-east-1/vol-1", "s3://b/snap-1", "ebs://r/snap-1/x"] {
            XCTAssertTrue(message { _ = try EBSBackupURL.parse(bad) }.contains("not an EBS backup URL"), bad)
        }
        XCTAssertNil(try EBSBackupURL.destinationRegion("ebs://"))
        XCTAssertEqual(try EBSBackupURL.destinationRegion("ebs://eu-west-1"), "eu-west-1")
    }

    func testDeviceCandidatesAreNamedByTheVolumeID() {
        let finder = EBSDeviceFinder(directory: "/dev/disk/by-id")
        XCTAssertEqual(finder.candidates(volumeID: "vol-0123abc", attachedAs: "/dev/sdf"),
                       ["/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123abc", "/dev/xvdf", "/dev/sdf"])
        XCTAssertNil(finder.device(volumeID: "vol-0nothere", attachedAs: "/dev/sdz"))
    }
}
