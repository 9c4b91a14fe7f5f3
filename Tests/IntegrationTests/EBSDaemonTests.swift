import AWS
import Foundation
import XCTest

/// The daemon with the ebs driver against moto's EC2, the emulator playing the host that makes attached volumes
/// appear as block devices; mkfs, mount, reference counts, unmount and detach are real.
final class EBSDaemonTests: EBSDaemonTestCase {
    override var volumeSuffixes: [String] { ["a", "b", "c", "r"] }

    func testLifeCycleThroughTheCLIKeepsDataAcrossUnmountAndMount() async throws {
        let name = prefix + "a"
        let created = try daemon.cli(["create", name, "--size", "1G", "--opt", "type=gp2"])
        XCTAssertEqual(created.status, 0, created.stderr + daemon.log_())
        let ebsVolumes = try await ebs.volumes(named: name)
        XCTAssertEqual(ebsVolumes.count, 1)
        let volume = try XCTUnwrap(ebsVolumes.first)
        XCTAssertEqual(volume.sizeGiB, 1)
        XCTAssertEqual(volume.volumeType, "gp2")
        XCTAssertEqual(volume.availabilityZone, ebs.zone)
        XCTAssertEqual(volume.tags["Name"], name)
        XCTAssertEqual(volume.attachments.map(\.instanceID), [ebs.instanceID], "attached to this instance")
        XCTAssertTrue(created.stdout.contains(volume.id), created.stdout)

        let mounted = try daemon.cli(["mount", name])
        XCTAssertEqual(mounted.status, 0, mounted.stderr)
        let path = mounted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(path, daemon.root + "/ebs/mounts/" + name)
        XCTAssertTrue(daemon.mountsUnderDirectory.contains(path), "a real mount")
        // Mounted from the device the volume's id leads to, never one found by size.
        let loop = try Command.check("/usr/bin/readlink", ["-f", ebs.deviceLink(volume.id)])
        XCTAssertEqual(try Command.check("/usr/bin/findmnt", ["-n", "-o", "SOURCE", path]), loop)
        XCTAssertEqual(try Command.check("/usr/bin/findmnt", ["-n", "-o", "FSTYPE", path]), "ext4\n")
        try Command.check("/bin/sh", ["-c", "head -c 300000 /dev/urandom > '\(path)/data' "
                                    + "&& cp '\(path)/data' '\(daemon.directory)/expected'"])

        XCTAssertEqual(try daemon.cli(["umount", name]).status, 0)
        XCTAssertFalse(daemon.mountsUnderDirectory.contains(path), "the last reference unmounts")
        XCTAssertEqual(try daemon.cli(["mount", name]).status, 0)
        try Command.check("/usr/bin/cmp", [path + "/data", daemon.directory + "/expected"])
        XCTAssertTrue(try daemon.cli(["delete", name]).stderr.contains("in use"), "no delete while mounted")
        XCTAssertEqual(try daemon.cli(["umount", name]).status, 0)

        let deleted = try daemon.cli(["delete", name])
        XCTAssertEqual(deleted.status, 0, deleted.stderr)
        let gone = try await ebs.ec2.volume(volume.id)
        XCTAssertNil(gone, "the EBS volume is deleted")
        XCTAssertTrue(ebs.eventually { !FileManager.default.fileExists(atPath: ebs.deviceLink(volume.id)) },
                      "and its disk went away")
        XCTAssertFalse(try daemon.cli(["list"]).stdout.contains(name))
    }

    func testLifeCycleThroughThePluginAPIWithTwoReferences() async throws {
        let name = prefix + "b"
        try daemon.pluginOK("VolumeDriver.Create", ["Name": name, "Opts": ["size": "2G", "fs": "xfs"]])
        XCTAssertEqual((try daemon.pluginOK("VolumeDriver.Capabilities", [:])["Capabilities"]
                        as? [String: String])?["Scope"], "local")
        let found = try await ebs.volumes(named: name)
        let volume = try XCTUnwrap(found.first)
        XCTAssertEqual(volume.sizeGiB, 2)
        XCTAssertEqual(volume.volumeType, "gp3", "the default type")

        let first = try daemon.pluginOK("VolumeDriver.Mount", ["Name": name, "ID": "c1"])["Mountpoint"] as? String ?? ""
        let second = try daemon.pluginOK("VolumeDriver.Mount", ["Name": name, "ID": "c2"])["Mountpoint"]
            as? String ?? ""
        XCTAssertEqual(first, second)
        XCTAssertEqual(try Command.check("/usr/bin/findmnt", ["-n", "-o", "FSTYPE", first]), "xfs\n")
        try Command.check("/bin/sh", ["-c", "echo hello > '\(first)/greeting'"])
        try daemon.pluginOK("VolumeDriver.Unmount", ["Name": name, "ID": "c1"])
        XCTAssertTrue(daemon.mountsUnderDirectory.contains(first), "still mounted for c2")
        try daemon.pluginOK("VolumeDriver.Unmount", ["Name": name, "ID": "c2"])
        XCTAssertFalse(daemon.mountsUnderDirectory.contains(first))
        let again = try daemon.pluginOK("VolumeDriver.Mount", ["Name": name, "ID": "c3"])["Mountpoint"] as? String ?? ""
        XCTAssertEqual(try Command.check("/bin/cat", [again + "/greeting"]), "hello\n")
        try daemon.pluginOK("VolumeDriver.Unmount", ["Name": name, "ID": "c3"])
        try daemon.pluginOK("VolumeDriver.Remove", ["Name": name])
        let left = try await ebs.volumes(named: name)
        XCTAssertEqual(left, [])
    }

    /// After a restart the volume is found by its record: still attached, still mounted, its reference kept; a
    /// volume detached behind convoy's back is attached again by the next mount.
    func testARestartKeepsMountsAndAMountReattachesADetachedVolume() async throws {
        let name = prefix + "r"
        try daemon.pluginOK("VolumeDriver.Create", ["Name": name])
        let path = try daemon.pluginOK("VolumeDriver.Mount", ["Name": name, "ID": "c1"])["Mountpoint"] as? String ?? ""
        try Command.check("/bin/sh", ["-c", "echo kept > '\(path)/state'"])
        XCTAssertEqual(daemon.stop(), 0)
        try daemon.start()
        XCTAssertEqual(try daemon.references(of: name), 1)
        XCTAssertEqual(try Command.check("/bin/cat", [path + "/state"]), "kept\n")
        try daemon.pluginOK("VolumeDriver.Unmount", ["Name": name, "ID": "c1"])

        let found = try await ebs.volumes(named: name)
        let volume = try XCTUnwrap(found.first)
        try await ebs.ec2.detachVolume(volume.id, instanceID: ebs.instanceID)
        XCTAssertTrue(ebs.eventually { !FileManager.default.fileExists(atPath: ebs.deviceLink(volume.id)) })
        let again = try daemon.pluginOK("VolumeDriver.Mount", ["Name": name, "ID": "c2"])["Mountpoint"] as? String ?? ""
        XCTAssertEqual(try Command.check("/bin/cat", [again + "/state"]), "kept\n")
        try daemon.pluginOK("VolumeDriver.Unmount", ["Name": name, "ID": "c2"])
        try daemon.pluginOK("VolumeDriver.Remove", ["Name": name])
        let gone = try await ebs.ec2.volume(volume.id)
        XCTAssertNil(gone)
    }

    func testInvalidVolumeOptionsAreRefusedBeforeEC2IsAsked() async throws {
        let name = prefix + "c"
        let badType = try daemon.cli(["create", name, "--opt", "type=gp9"])
        XCTAssertNotEqual(badType.status, 0)
        XCTAssertTrue(badType.stderr.contains("'gp9' is not an EBS volume type"), badType.stderr)
        let iops = try daemon.cli(["create", name, "--opt", "type=gp2", "--opt", "iops=3000"])
        XCTAssertTrue(iops.stderr.contains("only gp3, io1 and io2 volumes take iops"), iops.stderr)
        let tooSmall = try daemon.cli(["create", name, "--size", "1G", "--opt", "type=st1"])
        XCTAssertTrue(tooSmall.stderr.contains("st1 volumes are 125 to 16384 GiB"), tooSmall.stderr)
        // EC2's own refusal reaches the user with its code and request id.
        let missing = try daemon.cli(["create", name, "--backup", "ebs://us-east-1/snap-00000000000000001"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("EC2 CreateVolume: HTTP 400 InvalidSnapshot.NotFound"), missing.stderr)
        XCTAssertTrue(missing.stderr.contains("(request id "), missing.stderr)
        let lazy = try daemon.cli(["create", name, "--backup", "ebs://us-east-1/snap-00000000000000001", "--lazy"])
        XCTAssertTrue(lazy.stderr.contains("restore it without lazy"), lazy.stderr)
        let otherRegion = try daemon.cli(["create", name, "--backup", "ebs://eu-west-1/snap-00000000000000001"])
        XCTAssertTrue(otherRegion.stderr.contains("this daemon's ebs driver works in us-east-1"), otherRegion.stderr)
        let left = try await ebs.volumes(named: name)
        XCTAssertEqual(left, [])
        XCTAssertFalse(try daemon.cli(["list"]).stdout.contains(name))
    }
}
