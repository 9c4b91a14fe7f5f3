import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// kill -9 at the worst moments. The daemon (a debug build) kills itself at the failpoint `CONVOY_FAILPOINT`
/// names, before or after a database write, a driver's action or a store write, in the middle of a workload of
/// create, mount, unmount, snapshot, backup, restore, delete and collection. After each restart: no volume left
/// `creating` or `deleting`, the driver's volumes are exactly the recorded ones, every backup in the store
/// verifies, and the same workload then runs whole. One trial per failpoint in CI; `CONVOY_FAILPOINT_TRIALS`
/// random ones for bench/RELIABILITY.md.
final class CrashFailpointTests: XCTestCase {
    static let failpoints = [
        "create-recorded", "create-driver-done", "create-populated", "delete-marked", "delete-driver-done",
        "delete-recorded", "mount-driver-done", "unmount-reference-removed", "snapshot-manifest-written",
        "snapshot-row-deleted", "backup-blocks-copied", "backup-manifest-written", "backup-manifest-deleted",
        "gc-blocks-deleted", "gc-packs-rewritten",
    ]

    var daemon: DaemonHarness!
    var store: String { "vfs://\(daemon.directory)/store" }

    override func setUpWithError() throws {
        daemon = try DaemonHarness()
        daemon.extraArguments = ["--backup-destinations", store]
    }

    override func tearDown() {
        daemon.cleanUp()
    }

    /// The objects a listing prints: an array, or (volumes and backups, as Convoy printed them) an object by name.
    private func json(_ arguments: [String]) throws -> [[String: Any]] {
        let result = try daemon.cli(arguments)
        guard result.status == 0 else { throw HarnessError("\(arguments): \(result.stderr)") }
        let parsed = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
        if let byName = parsed as? [String: [String: Any]] { return Array(byName.values) }
        return (parsed as? [[String: Any]]) ?? []
    }

    /// The workload, step by step, with names of its own; false once the daemon is gone (the failpoint hit).
    private func workload(_ tag: String) throws -> Bool {
        let volume = daemon.root + "/vfs/\(tag)-a"
        let steps: [() throws -> Bool] = [
            { try self.daemon.cli(["create", "\(tag)-a"]).status == 0 },
            {
                try Command.check("/bin/sh", ["-c", "mkdir -p '\(volume)/d' && head -c 3000000 /dev/urandom > "
                    + "'\(volume)/big' && for i in 1 2 3 4 5; do echo $i > '\(volume)/d/f'$i; done"])
                return true
            },
            { try self.daemon.cli(["mount", "\(tag)-a"]).status == 0 },
            { try self.daemon.cli(["umount", "\(tag)-a"]).status == 0 },
            { try self.daemon.cli(["snapshot", "create", "\(tag)-a", "--name", "\(tag)-s1"]).status == 0 },
            { try self.daemon.cli(["backup", "create", "\(tag)-s1", "--dest", self.store]).status == 0 },
            {
                let url = try self.json(["backup", "list", self.store, "--volume-name", "\(tag)-a"])
                    .compactMap { $0["BackupURL"] as? String }.first ?? ""
                return try self.daemon.cli(["create", "\(tag)-b", "--backup", url]).status == 0
            },
            {
                try Command.check("/bin/sh", ["-c", "head -c 1000000 /dev/urandom > '\(volume)/big'"])
                return try self.daemon.cli(["snapshot", "create", "\(tag)-a", "--name", "\(tag)-s2"]).status == 0
            },
            { try self.daemon.cli(["backup", "create", "\(tag)-s2", "--dest", self.store]).status == 0 },
            {
                let urls = try self.json(["backup", "list", self.store, "--volume-name", "\(tag)-a"])
                    .compactMap { $0["BackupURL"] as? String }.sorted()
                return try self.daemon.cli(["backup", "delete", urls.first ?? ""]).status == 0
            },
            { try self.daemon.cli(["snapshot", "delete", "\(tag)-s1"]).status == 0 },
            { try self.daemon.cli(["delete", "\(tag)-b"]).status == 0 },
        ]
        for (index, step) in steps.enumerated() {
            let done = try step()
            // The CLI sees the connection drop before this process is told its child died: give it a moment.
            let told = Date().addingTimeInterval(5)
            while !done, daemon.isRunning, Date() < told { usleep(20_000) }
            if !daemon.isRunning { return false }
            XCTAssertTrue(done, "\(tag): step \(index) failed with the daemon running: \(daemon.log_().suffix(2000))")
        }
        return true
    }

    /// What must hold after any crash and restart.
    private func checkInvariants(after failpoint: String) throws {
        let volumes = try json(["list"])
        for volume in volumes {
            XCTAssertEqual(volume["State"] as? String, "ready", "\(failpoint): \(volume)")
        }
        let recorded = Set(volumes.compactMap { $0["Name"] as? String })
        let directories = Set(((try? FileManager.default.contentsOfDirectory(atPath: daemon.root + "/vfs")) ?? [])
            .filter { !$0.hasPrefix(".") })
        XCTAssertEqual(directories, recorded, "\(failpoint): the driver's volumes are not the recorded ones")
        for backup in try json(["backup", "list", store]) {
            guard let url = backup["BackupURL"] as? String else { continue }
            let verified = try daemon.cli(["backup", "verify", url])
            XCTAssertTrue(verified.status == 0 && verified.stdout.contains("0 problem(s)"),
                          "\(failpoint): \(url) does not verify: \(verified.stdout) \(verified.stderr)")
        }
        var snapshots: Set<String> = []
        for snapshot in try json(["snapshot", "list"]) {
            guard let name = snapshot["Name"] as? String else { continue }
            snapshots.insert(name)
            XCTAssertEqual(try daemon.cli(["snapshot", "inspect", name]).status, 0, "\(failpoint): \(name)")
        }
        // The local snapshot store holds the recorded snapshots' manifests, and only those.
        let volumesInStore = daemon.root + "/snapshots/convoy-backupstore/volumes"
        var manifests: Set<String> = []
        for volume in (try? FileManager.default.contentsOfDirectory(atPath: volumesInStore)) ?? [] {
            let backups = volumesInStore + "/" + volume + "/backups"
            manifests.formUnion(((try? FileManager.default.contentsOfDirectory(atPath: backups)) ?? [])
                .filter { !$0.contains(".tmp-") })
        }
        XCTAssertEqual(manifests, snapshots, "\(failpoint): the local store's snapshots are not the recorded ones")
    }

    /// One trial: the workload until the failpoint kills the daemon, a restart, the invariants, then the whole
    /// workload again. Returns whether the failpoint was reached.
    private func trial(_ failpoint: String, tag: String) throws -> Bool {
        daemon.environment = ["CONVOY_FAILPOINT": failpoint]
        try daemon.start()
        let completed = try workload(tag)
        if completed { XCTAssertEqual(daemon.stop(), 0) } else { daemon.crash() }
        daemon.environment = [:]
        try daemon.start()
        try checkInvariants(after: failpoint)
        XCTAssertTrue(try workload(tag + "x"), "\(failpoint): the workload fails after the restart")
        XCTAssertEqual(daemon.stop(), 0)
        return !completed
    }

    func testAKillAtAnyFailpointLeavesAConsistentDaemon() throws {
        let environment = ProcessInfo.processInfo.environment
        let trials = Int(environment["CONVOY_FAILPOINT_TRIALS"] ?? "") ?? 0
        var plan = Self.failpoints
        if trials > 0 { plan = (0..<trials).map { _ in Self.failpoints.randomElement() ?? "create-recorded" } }
        var reached: [String: Int] = [:]
        let started = Date()
        var done = 0
        for (index, failpoint) in plan.enumerated() {
            let crashed = try trial(failpoint, tag: "t\(index)")
            if crashed { reached[failpoint, default: 0] += 1 }
            done += 1
            // A line per trial, flushed: a long run that dies still tells how far it got.
            print("failpoints: trial \(index) at \(failpoint): \(crashed ? "killed there" : "not reached"), "
                  + "\(Int(Date().timeIntervalSince(started))) s")
            fflush(nil)  // every output stream (stdout itself is not concurrency-safe to name)
            if testRun?.failureCount ?? 0 > 0 {
                print("failpoints: trial \(index) (\(failpoint)) failed; daemon log:\n\(daemon.log_().suffix(4000))")
                break
            }
        }
        let missed = Set(Self.failpoints).subtracting(reached.keys).sorted()
        if trials == 0 {
            // Collection rewrites packs only when one holds both live and dead blocks: the one that may be missed.
            XCTAssertTrue(missed.allSatisfy { $0 == "gc-packs-rewritten" }, "never reached: \(missed)")
        }
        print("failpoints: \(done) of \(plan.count) trials in \(Int(Date().timeIntervalSince(started))) s, "
              + "\(reached.values.reduce(0, +)) crashes at \(reached.count) failpoints, "
              + "\(testRun?.failureCount ?? 0) violations; "
              + "not reached: \(missed)")
    }
}
