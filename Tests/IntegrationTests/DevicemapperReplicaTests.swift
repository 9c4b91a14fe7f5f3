import Foundation
import XCTest

/// Replicated thin volumes (issue 19), in the VM: host A backs a devicemapper volume up to a store both hosts reach
/// every interval (block backups, incremental from thin_delta); A dies; host B, with a thin pool of its own, is
/// refused while A's lease is live, then restores the newest replica lazily (the backup's image as the external
/// origin of a new thin volume) with A's data; A, restarted, is fenced.
extension DevicemapperDaemonTests {
    func testAReplicatedThinVolumeMovesToAnotherHostAndTheOldOneIsFenced() throws {
        XCTAssertEqual(daemon.stop(), 0)
        daemon.extraArguments += ["--host-id", "host-a"]
        try daemon.start()
        let replica = "vfs://\(daemon.directory)/b"
        let hostB = try DaemonHarness()
        let poolB = "cvd-" + String(UUID().uuidString.prefix(8)).lowercased()
        hostB.extraArguments = ["--drivers", "devicemapper", "--driver-opts", "dm.thinpoolname=\(poolB)",
                                "--driver-opts", "dm.defaultvolumesize=64M",
                                "--driver-opts", "dm.thinpoolblocksize=64K",
                                "--host-id", "host-b", "--backup-destinations", replica]
        try hostB.start()
        defer { Self.removeHost(hostB, pool: poolB) }
        let options = ["--size", "32M", "--opt", "replica=\(replica)", "--opt", "replicainterval=2s"]

        let created = try daemon.cli(["create", "data"] + options)
        XCTAssertEqual(created.status, 0, created.stderr)
        let onA = try mountVolume("data")
        try Command.check("/bin/sh", ["-c", "head -c 3000000 /dev/urandom > '\(onA)/data' "
                                    + "&& echo acknowledged on A > '\(onA)/note' && sync"])
        let dataSum = try sha256(onA + "/data")
        let written = Date()
        try waitUntil("a replica made after the write") {
            let status = try replicaStatus(daemon, "data")
            guard let age = Int(status["replicaAgeSeconds"] as? String ?? "") else { return false }
            return Date().timeIntervalSince(written) - Double(age) > 0.5
        }

        daemon.crash()  // A dies; its devices stay in this kernel, B has a pool of its own
        let refused = try hostB.cli(["create", "data"] + options)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("replicated by host host-a, whose lease runs until"), refused.stderr)
        try waitUntil("A's lease to run out and B to take the volume") {
            try hostB.cli(["create", "data"] + options, timeout: 120).status == 0
        }
        let mounted = try hostB.cli(["mount", "data"])
        XCTAssertEqual(mounted.status, 0, mounted.stderr + hostB.log_())
        let onB = mounted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try sha256(onB + "/data"), dataSum, "B has A's data as of the newest replica")
        XCTAssertEqual(try String(contentsOfFile: onB + "/note", encoding: .utf8), "acknowledged on A\n")
        try waitUntil("B to replicate") { try replicaStatus(hostB, "data")["replica"] != nil }

        try daemon.start()
        let fenced = try daemon.pluginErr("VolumeDriver.Mount", #"{"Name":"data","ID":"x"}"#)
        XCTAssertTrue(fenced.contains("fenced on this host: host host-b took it over"), fenced)
        XCTAssertEqual(try replicaStatus(daemon, "data")["fenced"] as? String, "host host-b took this volume over")
    }

    private func replicaStatus(_ host: DaemonHarness, _ volume: String) throws -> [String: Any] {
        let get = try host.pluginOK("VolumeDriver.Get", ["Name": volume])
        return ((get["Volume"] as? [String: Any])?["Status"] as? [String: Any]) ?? [:]
    }
}
