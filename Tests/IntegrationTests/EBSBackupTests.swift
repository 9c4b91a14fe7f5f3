import AWS
import Foundation
import XCTest

/// EBS snapshots as convoy snapshots and backups (`ebs://<region>/<snap-id>`), restores from them, and an attach
/// that never completes.
final class EBSBackupTests: EBSDaemonTestCase {
    /// fsfreeze on: snapshots freeze the (loop-backed, real) filesystem around CreateSnapshot.
    override var driverOptions: [String] { ["ebs.attachtimeout=3", "ebs.fsfreeze=true"] }
    override var volumeSuffixes: [String] { ["src", "cli", "docker", "lost"] }

    func testSnapshotBackupToEBSAndRestoreThroughTheCLIAndThePluginAPI() async throws {
        let source = prefix + "src"
        XCTAssertEqual(try daemon.cli(["create", source]).status, 0)
        let path = try daemon.cli(["mount", source]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try Command.check("/bin/sh", ["-c", "mkdir '\(path)/d' && head -c 700000 /dev/urandom > '\(path)/d/blob' "
                                    + "&& echo v1 > '\(path)/state'"])

        let snapshot = try daemon.cli(["snapshot", "create", source, "--name", prefix + "-s1"])
        XCTAssertEqual(snapshot.status, 0, snapshot.stderr + daemon.log_())
        let backup = try daemon.cli(["backup", "create", prefix + "-s1", "--dest", "ebs://"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let url = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(url.hasPrefix("ebs://us-east-1/snap-"), url)
        let snapshotID = String(url.dropFirst("ebs://us-east-1/".count))
        let ebsSnapshot = try await ebs.ec2.snapshot(snapshotID)
        let sourceVolume = try await ebs.volumes(named: source).first
        XCTAssertEqual(ebsSnapshot?.volumeID, sourceVolume?.id)
        XCTAssertEqual(ebsSnapshot?.tags["convoy-backup"], "true")

        let listed = try daemon.cli(["backup", "list", "ebs://us-east-1", "--volume-name", source])
        XCTAssertTrue(listed.stdout.contains(url), listed.stdout + listed.stderr)
        let inspected = try daemon.cli(["backup", "inspect", url])
        XCTAssertTrue(inspected.stdout.contains(source) && inspected.stdout.contains(prefix + "-s1"), inspected.stdout)
        XCTAssertTrue(try daemon.cli(["backup", "create", prefix + "-s1", "--dest", "vfs:///tmp/x"]).stderr
            .contains("--dest ebs://"))

        // Restores: the CLI's --backup, and Docker's -o backup=.
        let restored = try daemon.cli(["create", prefix + "cli", "--backup", url])
        XCTAssertEqual(restored.status, 0, restored.stderr + daemon.log_())
        try daemon.pluginOK("VolumeDriver.Create", ["Name": prefix + "docker", "Opts": ["backup": url]])
        for name in [prefix + "cli", prefix + "docker"] {
            let copy = try daemon.cli(["mount", name]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertEqual(copy, daemon.root + "/ebs/mounts/" + name)
            try Command.check("/usr/bin/diff", ["-r", path, copy])
            let made = try await ebs.volumes(named: name).first
            XCTAssertEqual(made?.snapshotID, snapshotID, "made from the snapshot")
            XCTAssertEqual(try daemon.cli(["umount", name]).status, 0)
            XCTAssertEqual(try daemon.cli(["delete", name]).status, 0)
        }

        // The snapshot goes; the backup (the same EBS snapshot) stays until it is deleted.
        XCTAssertEqual(try daemon.cli(["snapshot", "delete", prefix + "-s1"]).status, 0)
        let kept = try await ebs.ec2.snapshot(snapshotID)
        XCTAssertNotNil(kept)
        let deleted = try daemon.cli(["backup", "delete", url])
        XCTAssertEqual(deleted.status, 0, deleted.stderr)
        let gone = try await ebs.ec2.snapshot(snapshotID)
        XCTAssertNil(gone)
        XCTAssertFalse(try daemon.cli(["backup", "list", "ebs://"]).stdout.contains(url))
        XCTAssertEqual(try daemon.cli(["umount", source]).status, 0)
        XCTAssertEqual(try daemon.cli(["delete", source]).status, 0)
    }

    func testAnAttachThatNeverCompletesTimesOutAndLeavesNoVolume() async throws {
        let name = prefix + "lost"
        try (name + "\n").write(toFile: ebs.ignoreFile, atomically: false, encoding: .utf8)
        defer { try? "".write(toFile: ebs.ignoreFile, atomically: false, encoding: .utf8) }
        let started = Date()
        let created = try daemon.cli(["create", name])
        XCTAssertNotEqual(created.status, 0)
        XCTAssertLessThan(Date().timeIntervalSince(started), 30, "bounded by ebs.attachtimeout")
        XCTAssertTrue(created.stderr.contains("the block device of EBS volume vol-"), created.stderr)
        XCTAssertTrue(created.stderr.contains("did not happen within 3"), created.stderr)
        XCTAssertTrue(created.stderr.contains("nvme-Amazon_Elastic_Block_Store_vol"),
                      "says where it looked: \(created.stderr)")
        let left = try await ebs.volumes(named: name)
        XCTAssertEqual(left, [], "the EBS volume was detached and deleted")
        XCTAssertFalse(try daemon.cli(["list"]).stdout.contains(name), "and convoy does not know it")
    }

    func testACreateInterruptedByACrashLeavesNoVolumeAfterTheRestart() async throws {
        let name = prefix + "crashed"
        try (name + "\n").write(toFile: ebs.ignoreFile, atomically: false, encoding: .utf8)
        defer { try? "".write(toFile: ebs.ignoreFile, atomically: false, encoding: .utf8) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: DaemonHarness.binary)
        process.arguments = ["create", name, "--socket", daemon.socket]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Killed while it waits for the attach: the EBS volume exists, its id is not in convoy's record yet.
        let deadline = Date().addingTimeInterval(20)
        var made = try await ebs.volumes(named: name)
        while Date() < deadline, made.isEmpty {
            usleep(50_000)
            made = try await ebs.volumes(named: name)
        }
        XCTAssertEqual(made.count, 1)
        daemon.crash()
        process.waitUntilExit()
        try daemon.start()
        let left = try await ebs.volumes(named: name)
        XCTAssertEqual(left, [], "the restart removed the EBS volume of the interrupted create")
        XCTAssertFalse(try daemon.cli(["list"]).stdout.contains(name), "and convoy does not know it")
    }
}
