import AWS
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Two daemons as two hosts on one EC2 (moto), each with its own root, host id and instance; the attach emulator
/// gives each instance its disks, one backing file per EBS volume following its attachment. Host A mounts a
/// volume and appends fsync'd records; A dies (kill -9, and its kernel's mount with it); B's Mount is refused
/// while A's lease is live, then takes the volume over with every acknowledged record; A restarted is fenced and
/// changes nothing; once B unmounts, A can have the volume back.
final class EBSFailoverTests: XCTestCase {
    var hostA: DaemonHarness!
    var hostB: DaemonHarness!
    var ebs: EBSTestEnvironment!
    var volumeName = ""
    var writer: Process?
    /// Host B's /metrics, where its lease takeovers and renewals are counted.
    var metricsB = ""
    static let leaseSeconds = 6

    override func setUp() async throws {
        ebs = try EBSTestEnvironment()
        guard ebs.secondInstanceID != nil, ebs.secondDeviceDirectory != nil else {
            throw XCTSkip("the attach emulator plays one instance only (CONVOY_TEST_EBS_INSTANCE_2 is not set)")
        }
        volumeName = "f" + String(UUID().uuidString.prefix(6)).lowercased()
        hostA = try DaemonHarness()
        hostA.extraArguments = ebs.daemonArguments(["ebs.leasettl=\(Self.leaseSeconds)"]) + ["--host-id", "host-a"]
        hostB = try DaemonHarness()
        let port = try MetricsScrape.freePort()
        metricsB = "http://127.0.0.1:\(port)/metrics"
        hostB.extraArguments = ebs.daemonArguments(["ebs.leasettl=\(Self.leaseSeconds)"], onSecondInstance: true)
            + ["--host-id", "host-b", "--metrics-address", "127.0.0.1:\(port)"]
        try hostA.start()
        try hostB.start()
    }

    override func tearDown() async throws {
        if let writer, writer.isRunning { kill(writer.processIdentifier, SIGKILL) }
        for host in [hostA, hostB].compactMap({ $0 }) {
            host.crash()
            host.detachMounts()
        }
        await ebs?.removeVolumes(named: [volumeName])
        hostA?.cleanUp()
        hostB?.cleanUp()
    }

    func testAVolumeFollowsItsWorkloadToAnotherHostAfterTheLeaseAndTheOldHostIsFenced() async throws {
        XCTAssertEqual(try hostA.cli(["create", volumeName, "--size", "1G"]).status, 0, hostA.log_())
        let pathA = try hostA.pluginOK("VolumeDriver.Mount", ["Name": volumeName, "ID": "c1"])["Mountpoint"]
            as? String ?? ""
        let made = try await ebs.volumes(named: volumeName)
        let volume = try XCTUnwrap(made.first)
        XCTAssertEqual(volume.tags["convoy-lease-host"], "host-a", "A holds the lease while it mounts the volume")

        // A's workload: records appended with fsync; the count it acknowledged is written after each fsync.
        let acknowledged = hostA.directory + "/acknowledged"
        writer = try startWriter(log: pathA + "/log", acknowledged: acknowledged)
        XCTAssertTrue(ebs.eventually { ((try? String(contentsOfFile: acknowledged, encoding: .utf8)) ?? "") > "" })
        usleep(1_500_000)
        // Host A dies: its workload, its convoy, and (for this test's host) the kernel's mount of the volume.
        if let writer { kill(writer.processIdentifier, SIGKILL); writer.waitUntilExit() }
        hostA.crash()
        let killed = Date()
        try Command.check("/bin/umount", [pathA])
        let acked = Int(try String(contentsOfFile: acknowledged, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        XCTAssertGreaterThan(acked, 0)

        // Host B: the swarm's Create of the same name finds A's volume; its Mount waits for A's lease.
        try hostB.pluginOK("VolumeDriver.Create", ["Name": volumeName, "Opts": ["size": "1G"]])
        let found = try await ebs.volumes(named: volumeName)
        XCTAssertEqual(found.count, 1, "no second EBS volume for one name")
        let refusal = try hostB.pluginErr("VolumeDriver.Mount", #"{"Name":"\#(volumeName)","ID":"c2"}"#)
        XCTAssertTrue(refusal.contains("host host-a") && refusal.contains("lease runs until"), refusal)
        var pathB = ""
        let deadline = Date().addingTimeInterval(TimeInterval(Self.leaseSeconds + 30))
        while pathB.isEmpty, Date() < deadline {
            let reply = try hostB.plugin("VolumeDriver.Mount", #"{"Name":"\#(volumeName)","ID":"c2"}"#)
            pathB = reply.json["Mountpoint"] as? String ?? ""
            if pathB.isEmpty { usleep(250_000) }
        }
        XCTAssertFalse(pathB.isEmpty, "B never took the volume over: " + hostB.log_())
        let failover = Date().timeIntervalSince(killed)
        XCTAssertGreaterThanOrEqual(failover, Double(Self.leaseSeconds) - 2.5, "taken over before A's lease ran out")
        print(String(format: "ebs failover: kill -9 of host A -> volume mounted on host B in %.1f s "
                     + "(lease %d s, %d records acknowledged)", failover, Self.leaseSeconds, acked))
        let records = try String(contentsOfFile: pathB + "/log", encoding: .utf8).split(separator: "\n")
        XCTAssertGreaterThanOrEqual(records.count, acked, "every record A acknowledged is on B")
        for (index, record) in records.prefix(acked).enumerated() { XCTAssertEqual(record, "record \(index)") }
        let movedVolume = try await ebs.ec2.volume(volume.id)
        let moved = try XCTUnwrap(movedVolume)
        XCTAssertEqual(moved.attachments.map(\.instanceID), [ebs.secondInstanceID ?? ""])
        XCTAssertEqual(moved.tags["convoy-lease-host"], "host-b")
        XCTAssertTrue(hostB.log_().contains("host host-b takes volume \(volumeName)"), hostB.log_())
        XCTAssertTrue(hostB.log_().contains("from host host-a"), "both host ids in the log")
        XCTAssertEqual(try MetricsScrape.scrape(metricsB).value("convoy_lease_takeovers_total", ["lease": "ebs"]), 1)
        try Command.check("/bin/sh", ["-c", "echo written-on-b > '\(pathB)/b'"])

        // A comes back: its reference to the volume is kept, but the volume is B's: fenced, nothing changed.
        try hostA.start()
        let status = try hostA.pluginOK("VolumeDriver.Get", ["Name": volumeName])["Volume"] as? [String: Any]
        let fenced = (status?["Status"] as? [String: Any])?["fenced"] as? String ?? ""
        XCTAssertTrue(fenced.contains("host host-b"), "A's Status: \(String(describing: status))")
        XCTAssertFalse(hostA.mountsUnderDirectory.contains(pathA), "A did not mount it again")
        let again = try hostA.pluginErr("VolumeDriver.Mount", #"{"Name":"\#(volumeName)","ID":"c3"}"#)
        XCTAssertTrue(again.contains("fenced"), again)
        let afterVolume = try await ebs.ec2.volume(volume.id)
        let after = try XCTUnwrap(afterVolume)
        XCTAssertEqual(after.attachments.map(\.instanceID), [ebs.secondInstanceID ?? ""], "still B's only")
        XCTAssertEqual(after.tags["convoy-lease-host"], "host-b")
        XCTAssertEqual(try String(contentsOfFile: pathB + "/b", encoding: .utf8), "written-on-b\n")
        XCTAssertTrue(try hostA.cli(["delete", volumeName]).stderr.contains("in use"), "no delete from A meanwhile")

        // B renews while it mounts; once B unmounts, the volume (and its data) can go back to A.
        let renewed = Int(after.tags["convoy-lease-expires"] ?? "") ?? 0
        usleep(UInt32(Self.leaseSeconds) * 1_000_000 / 2 + 500_000)
        let later = Int(try await ebs.ec2.volume(volume.id)?.tags["convoy-lease-expires"] ?? "") ?? 0
        XCTAssertGreaterThan(later, renewed, "B renews its lease")
        XCTAssertGreaterThanOrEqual(try MetricsScrape.scrape(metricsB).count("convoy_lease_renewals_total",
                                                                            ["lease": "ebs"]), 1)
        try hostB.pluginOK("VolumeDriver.Unmount", ["Name": volumeName, "ID": "c2"])
        let released = try await ebs.ec2.volume(volume.id)
        XCTAssertNil(released?.tags["convoy-lease-host"], "released at unmount")
        try hostA.pluginOK("VolumeDriver.Unmount", ["Name": volumeName, "ID": "c1"])
        let back = try hostA.pluginOK("VolumeDriver.Mount", ["Name": volumeName, "ID": "c4"])["Mountpoint"]
            as? String ?? ""
        XCTAssertEqual(try String(contentsOfFile: back + "/b", encoding: .utf8), "written-on-b\n")
        let statusBack = try hostA.pluginOK("VolumeDriver.Get", ["Name": volumeName])["Volume"] as? [String: Any]
        XCTAssertNil((statusBack?["Status"] as? [String: Any])?["fenced"], "no longer fenced once A holds it")
        try hostA.pluginOK("VolumeDriver.Unmount", ["Name": volumeName, "ID": "c4"])
        try hostB.pluginOK("VolumeDriver.Remove", ["Name": volumeName])
        let left = try await ebs.volumes(named: volumeName)
        XCTAssertEqual(left, [], "deleted from B although A's instance had it attached")
    }

    /// A host cut off long enough for another to take the volume over (played here by writing the other host's
    /// lease into the tags, as its takeover does) finds the lease gone at its next renewal: it stops writing,
    /// unmounts, and says it is fenced.
    func testAHostThatFindsItsLeaseTakenStopsWritingAndSaysItIsFenced() async throws {
        XCTAssertEqual(try hostA.cli(["create", volumeName]).status, 0, hostA.log_())
        let path = try hostA.pluginOK("VolumeDriver.Mount", ["Name": volumeName, "ID": "c1"])["Mountpoint"]
            as? String ?? ""
        try Command.check("/bin/sh", ["-c", "echo before > '\(path)/a'"])
        let made = try await ebs.volumes(named: volumeName)
        let volume = try XCTUnwrap(made.first)
        let expires = Int(Date().timeIntervalSince1970) + 60
        try await ebs.ec2.createTags([volume.id], ["convoy-lease-host": "host-b",
                                                   "convoy-lease-instance": ebs.secondInstanceID ?? "",
                                                   "convoy-lease-expires": String(expires)])
        XCTAssertTrue(ebs.eventually { !hostA.mountsUnderDirectory.contains(path) }, "A unmounted it: "
            + hostA.log_())
        let status = try hostA.pluginOK("VolumeDriver.Get", ["Name": volumeName])["Volume"] as? [String: Any]
        let fenced = (status?["Status"] as? [String: Any])?["fenced"] as? String ?? ""
        XCTAssertTrue(fenced.contains("host host-b"), "A's Status: \(String(describing: status))")
        XCTAssertTrue(hostA.log_().contains("lost volume \(volumeName)"), hostA.log_())
        let refused = try hostA.pluginErr("VolumeDriver.Mount", #"{"Name":"\#(volumeName)","ID":"c2"}"#)
        XCTAssertTrue(refused.contains("fenced") && refused.contains("host-b"), refused)
        let after = try await ebs.ec2.volume(volume.id)
        XCTAssertEqual(after?.tags["convoy-lease-host"], "host-b", "the other host's lease is left alone")
        XCTAssertEqual(after?.tags["convoy-lease-expires"], String(expires))
    }

    /// A volume made outside convoy and adopted on host A (`id=`) is found by its name on host B, which, deleting
    /// it, only gives it back: detached, no longer tagged with the name, not deleted.
    func testAnAdoptedVolumeIsFoundByNameOnAnotherHostAndGivenBackUntouched() async throws {
        let outside = try await ebs.ec2.createVolume(.init(availabilityZone: ebs.zone, sizeGiB: 1, volumeType: "gp3",
                                                           tags: ["Name": volumeName]))
        let adopted = try hostA.cli(["create", volumeName, "--opt", "id=\(outside.id)"])
        XCTAssertEqual(adopted.status, 0, adopted.stderr + hostA.log_())
        let tagged = try await ebs.ec2.volume(outside.id)
        XCTAssertEqual(tagged?.tags["convoy-volume"], volumeName)
        try hostB.pluginOK("VolumeDriver.Create", ["Name": volumeName])
        XCTAssertTrue(try hostB.cli(["inspect", volumeName]).stdout.contains(outside.id), "B uses the same volume")
        try hostB.pluginOK("VolumeDriver.Remove", ["Name": volumeName])
        let after = try await ebs.ec2.volume(outside.id)
        XCTAssertNotNil(after, "an adopted volume is never deleted")
        XCTAssertEqual(after?.attachments.filter { $0.state != "detached" }, [], "detached")
        XCTAssertNil(after?.tags["convoy-volume"], "and no longer a convoy volume of that name")
        try await ebs.ec2.deleteVolume(outside.id)
    }

    /// `record N` lines appended and fsync'd; N+1 written to `acknowledged` after each fsync.
    private func startWriter(log: String, acknowledged: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", """
            import os, sys
            fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            i = 0
            while True:
                os.write(fd, b"record %d\\n" % i)
                os.fsync(fd)
                i += 1
                with open(sys.argv[2] + ".tmp", "w") as ack: ack.write(str(i))
                os.rename(sys.argv[2] + ".tmp", sys.argv[2])
            """, log, acknowledged]
        try process.run()
        return process
    }
}
