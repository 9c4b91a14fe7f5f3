import ConvoyTestSupport
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Replicated local volumes (issue 19): host A backs a vfs volume up to a store both hosts reach every interval;
/// A dies; host B's Create of the same name with the same options is refused while A's lease is live, then
/// restores the newest replica lazily and replicates from there; A, restarted, is fenced.
final class ReplicatedVolumeTests: XCTestCase {
    var store = ""
    var hostA: DaemonHarness!
    var hostB: DaemonHarness!

    override func setUpWithError() throws {
        store = try TreeFixture.temporaryDirectory("replicas")
        hostA = try DaemonHarness()
        hostB = try DaemonHarness()
        for (daemon, id) in [(hostA!, "host-a"), (hostB!, "host-b")] {
            daemon.extraArguments = ["--host-id", id]
            try daemon.start()
        }
    }

    override func tearDown() {
        hostA?.cleanUp()
        hostB?.cleanUp()
        try? FileManager.default.removeItem(atPath: store)
    }

    var options: [String] { ["--opt", "replica=vfs://\(store)", "--opt", "replicainterval=1s"] }

    func status(_ daemon: DaemonHarness, _ volume: String) throws -> [String: Any] {
        let get = try daemon.pluginOK("VolumeDriver.Get", ["Name": volume])
        return ((get["Volume"] as? [String: Any])?["Status"] as? [String: Any]) ?? [:]
    }

    func waitFor(_ what: String, seconds: TimeInterval = 30, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return }
            usleep(200_000)
        }
        XCTFail("waited \(Int(seconds)) s for \(what)\nA: \(hostA.log_().suffix(2000))\n"
            + "B: \(hostB.log_().suffix(2000))")
    }

    func testAReplicatedVolumeMovesToAnotherHostAndTheOldOneIsFenced() throws {
        let created = try hostA.cli(["create", "data"] + options)
        XCTAssertEqual(created.status, 0, created.stderr)
        let onA = hostA.root + "/vfs/data"
        try TreeFixture.write(onA + "/record", Array("acknowledged on A".utf8))
        // A replica made after the write carries it.
        let written = Date()
        try waitFor("a replica after the write") {
            guard let age = Int(try self.status(self.hostA, "data")["replicaAgeSeconds"] as? String ?? "") else {
                return false
            }
            return Date().timeIntervalSince(written) - Double(age) > 0.5
        }
        let replicated = try status(hostA, "data")
        XCTAssertNotNil(replicated["replica"], "\(replicated)")

        hostA.crash()
        let refused = try hostB.cli(["create", "data"] + options)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("replicated by host host-a, whose lease runs until"), refused.stderr)
        // The lease (three intervals) runs out; then B takes the volume, usable at once.
        var moved = refused
        try waitFor("the lease to expire") {
            moved = try hostB.cli(["create", "data"] + options)
            return moved.status == 0
        }
        let mountpoint = try hostB.cli(["mount", "data"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(FileManager.default.contents(atPath: mountpoint + "/record"), Data("acknowledged on A".utf8))
        try waitFor("B to replicate") { try self.status(self.hostB, "data")["replica"] != nil }

        // A comes back: its copy is older than B's; it neither mounts nor replicates it.
        try hostA.start()
        XCTAssertTrue(hostA.log_().contains("host host-b took it over"), hostA.log_())
        let fenced = try hostA.pluginErr("VolumeDriver.Mount", #"{"Name":"data","ID":"x"}"#)
        XCTAssertTrue(fenced.contains("fenced on this host: host host-b took it over"), fenced)
        XCTAssertEqual(try status(hostA, "data")["fenced"] as? String, "host host-b took this volume over")
        let lease = try String(contentsOfFile: store + "/convoy-backupstore/replicas/data.json", encoding: .utf8)
        XCTAssertTrue(lease.contains("\"host\":\"host-b\""), lease)
    }
}
