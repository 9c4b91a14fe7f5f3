import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest

/// Scheduled backups through the real daemon and CLI on a `vfs://` store, with the scheduler's clock in a file the
/// test moves (`CONVOY_DEBUG_CLOCK_FILE`): days pass in a write. The volume changes every day; after each day's run
/// the store holds exactly the backups restic's rules keep when `forget` runs daily; downtime of five days costs one
/// catch-up run; the newest backup restores the newest data; Docker-style create options set a policy.
final class PolicySchedulerTests: XCTestCase {
    var daemon: DaemonHarness!
    var destination = ""
    var clockFile = ""
    /// 2026-03-02T00:00:00Z, a Monday.
    let start = Date(timeIntervalSince1970: 1_772_409_600)

    override func setUpWithError() throws {
        daemon = try DaemonHarness()
        clockFile = daemon.directory + "/clock"
        try setClock(start)
        daemon.environment = ["CONVOY_DEBUG_CLOCK_FILE": clockFile]
        try daemon.start()
        destination = "vfs://" + daemon.directory + "/backups"
    }

    override func tearDown() {
        daemon.cleanUp()
    }

    private func setClock(_ date: Date) throws {
        try "\(Int(date.timeIntervalSince1970))".write(toFile: clockFile + ".new", atomically: false, encoding: .utf8)
        XCTAssertEqual(rename(clockFile + ".new", clockFile), 0)
    }

    private func policy(_ volume: String) throws -> [String: Any] {
        let shown = try daemon.cli(["backup", "policy", "inspect", volume])
        XCTAssertEqual(shown.status, 0, shown.stderr)
        return try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any] ?? [:]
    }

    /// The volume's backups at the destination: URL → creation time.
    private func backups(_ volume: String) throws -> [String: String] {
        let listed = try daemon.cli(["backup", "list", destination, "--volume-name", volume])
        XCTAssertEqual(listed.status, 0, listed.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any] ?? [:]
        return object.mapValues { (($0 as? [String: Any])?["CreatedTime"] as? String) ?? "" }
    }

    /// Waits until the policy's last success is `time` (the run at that clock time ended well).
    private func waitForRun(_ volume: String, at time: Date) throws {
        let wanted = time.formatted(.iso8601)
        let deadline = Date().addingTimeInterval(60)
        var shown: [String: Any] = [:]
        while Date() < deadline {
            shown = try policy(volume)
            if shown["LastSuccess"] as? String == wanted, shown["Running"] as? Bool == false { return }
            if let error = shown["LastError"] as? String { XCTFail("the run failed: \(error)"); return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        XCTFail("no run at \(wanted): \(shown)\n" + daemon.log_())
    }

    func testDailyRunsKeepWhatResticsRulesKeepAndCatchUpOnce() throws {
        XCTAssertEqual(try daemon.cli(["create", "data"]).status, 0)
        let file = daemon.root + "/vfs/data/day.txt"
        let rules = RetentionPolicy(daily: 3, weekly: 2)
        let set = try daemon.cli(["backup", "policy", "set", "data", "--dest", destination, "--every", "1d",
                                  "--at", "01:00", "--keep-daily", "3", "--keep-weekly", "2",
                                  "--verify-every", "7d", "--verify-subset", "all"])
        XCTAssertEqual(set.status, 0, set.stderr)
        XCTAssertEqual(try policy("data")["NextRun"] as? String, "2026-03-02T01:00:00Z")
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.directory + "/backups"), "a run before its time")

        // Three weeks of days: the volume changes, the day's run happens a few seconds after 01:00.
        var model: [Date] = []
        for day in 0..<21 {
            try "day \(day)\n".write(toFile: file, atomically: true, encoding: .utf8)
            let runTime = start.addingTimeInterval(Double(day) * 86_400 + 3_600 + 7)
            try setClock(runTime)
            try waitForRun("data", at: runTime)
            let checkedOn = start.addingTimeInterval(Double(day - day % 7) * 86_400 + 3_600 + 7)
            XCTAssertEqual(try policy("data")["LastVerify"] as? String, checkedOn.formatted(.iso8601), "day \(day)")
            model.append(runTime)
            model = rules.apply(to: model.map { (id: $0.formatted(.iso8601), time: $0) }).filter(\.keep).map(\.time)
            let kept = try backups("data")
            XCTAssertEqual(Set(kept.values), Set(model.map { $0.formatted(.iso8601) }), "day \(day)")
        }
        // A file volume's runs go straight to the store: no snapshot kept, nothing in the local snapshot store.
        let snapshots = try daemon.cli(["snapshot", "list", "data", "--format", "table"]).stdout
        XCTAssertEqual(snapshots.split(separator: "\n").count, 1, "a scheduled snapshot was kept: \(snapshots)")
        let local = daemon.root + "/snapshots/convoy-backupstore"
        for area in ["blocks", "packs"] {
            let written = (try? FileManager.default.subpathsOfDirectory(atPath: local + "/" + area)) ?? []
            // <area>/<2 hex>/<name>: the objects, below their fan-out directories.
            XCTAssertEqual(written.filter { $0.contains("/") }, [], "\(area) written to the local store")
        }

        // Five days down: one catch-up run, not five; then the next slot.
        let restoredDay = 20
        let back = start.addingTimeInterval(26 * 86_400 + 12 * 3_600)
        let before = try backups("data").count
        try setClock(back)
        try waitForRun("data", at: back)
        Thread.sleep(forTimeInterval: 1.5)  // seven more ticks: nothing else may start
        let after = try policy("data")
        XCTAssertEqual(after["LastSuccess"] as? String, back.formatted(.iso8601))
        XCTAssertNil(after["LastError"])
        XCTAssertEqual(after["NextRun"] as? String, "2026-03-29T01:00:00Z")
        model.append(back)
        model = rules.apply(to: model.map { (id: $0.formatted(.iso8601), time: $0) }).filter(\.keep).map(\.time)
        XCTAssertEqual(Set(try backups("data").values), Set(model.map { $0.formatted(.iso8601) }))
        XCTAssertLessThanOrEqual(try backups("data").count, before + 1)

        // The newest backup holds the newest data.
        let newest = try XCTUnwrap(try backups("data").max { $0.value < $1.value }?.key)
        XCTAssertEqual(try daemon.cli(["create", "copy", "--backup", newest]).status, 0)
        XCTAssertEqual(try String(contentsOfFile: daemon.root + "/vfs/copy/day.txt", encoding: .utf8),
                       "day \(restoredDay)\n")

        // The destination was checked on days 0, 7 and 14 (a week apart) and at the catch-up; damage fails a run.
        XCTAssertEqual(after["LastVerify"] as? String, back.formatted(.iso8601))
        let packs = try Command.check("/usr/bin/find", [daemon.directory + "/backups", "-type", "f",
                                                        "-path", "*/packs/*", "!", "-name", "*.idx"])
            .split(separator: "\n").map(String.init)
        XCTAssertFalse(packs.isEmpty)
        for pack in packs {
            var bytes = try Data(contentsOf: URL(fileURLWithPath: pack))
            bytes[bytes.count / 2] ^= 0xff
            try bytes.write(to: URL(fileURLWithPath: pack))
        }
        let damagedRun = back.addingTimeInterval(8 * 86_400)
        try setClock(damagedRun)
        let checkDeadline = Date().addingTimeInterval(30)
        var checked: [String: Any] = [:]
        while Date() < checkDeadline {
            checked = try policy("data")
            let done = checked["LastVerify"] as? String == damagedRun.formatted(.iso8601)
            if done, checked["Running"] as? Bool == false { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        XCTAssertTrue((checked["LastError"] as? String ?? "").contains("problem(s)"), "\(checked)")
        XCTAssertEqual(checked["LastSuccess"] as? String, damagedRun.formatted(.iso8601), "the backup was written")

        // A volume deleted takes its policy with it.
        XCTAssertEqual(try daemon.cli(["delete", "data"]).status, 0)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, try daemon.cli(["backup", "policy", "inspect", "data"]).status == 0 {
            Thread.sleep(forTimeInterval: 0.1)
        }
        XCTAssertNotEqual(try daemon.cli(["backup", "policy", "inspect", "data"]).status, 0)
    }

    func testCreateOptionsSetAPolicyAndBadOnesAreRefusedBeforeTheVolumeIsMade() throws {
        let made = try daemon.cli(["create", "opts", "--opt", "backup-every=6h", "--opt", "backup-dest=" + destination,
                                   "--opt", "backup-keep-last=2"])
        XCTAssertEqual(made.status, 0, made.stderr)
        let shown = try policy("opts")
        XCTAssertEqual(shown["EverySeconds"] as? Double, 21_600)
        XCTAssertEqual((shown["Keep"] as? [String: Any])?["KeepLast"] as? Int, 2)
        XCTAssertEqual(shown["NextRun"] as? String, "2026-03-02T06:00:00Z")

        let partial = try daemon.cli(["create", "half", "--opt", "backup-every=1d"])
        XCTAssertNotEqual(partial.status, 0)
        XCTAssertTrue(partial.stderr.contains("backup-dest"), partial.stderr)
        let tooOften = try daemon.cli(["create", "often", "--opt", "backup-every=10s",
                                       "--opt", "backup-dest=" + destination])
        XCTAssertNotEqual(tooOften.status, 0)
        let subsetAlone = try daemon.cli(["create", "subset", "--opt", "backup-every=1d", "--opt",
                                          "backup-dest=" + destination, "--opt", "backup-verify-subset=2%"])
        XCTAssertTrue(subsetAlone.stderr.contains("verify-subset needs verify-every"), subsetAlone.stderr)
        for name in ["half", "often", "subset"] {
            XCTAssertNotEqual(try daemon.cli(["inspect", name]).status, 0, "\(name) was made with a bad policy")
        }
        XCTAssertNotEqual(try daemon.cli(["backup", "policy", "set", "nosuch", "--dest", destination,
                                          "--every", "1d"]).status, 0, "a policy for a volume that does not exist")

        // A run that fails says why, leaves no snapshot behind, and is tried again five minutes later.
        XCTAssertEqual(try daemon.cli(["backup", "policy", "set", "opts", "--dest", "vfs:///proc/convoy-nowhere",
                                       "--every", "6h"]).status, 0)
        let attempt = start.addingTimeInterval(6 * 3_600 + 1)
        try setClock(attempt)
        let deadline = Date().addingTimeInterval(30)
        var failed: [String: Any] = [:]
        while Date() < deadline {
            failed = try policy("opts")
            if failed["LastError"] != nil, failed["Running"] as? Bool == false { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        XCTAssertTrue((failed["LastError"] as? String ?? "").contains("/proc/convoy-nowhere"), "\(failed)")
        XCTAssertNil(failed["LastSuccess"])
        XCTAssertEqual(failed["LastAttempt"] as? String, attempt.formatted(.iso8601))
        XCTAssertEqual(failed["NextRun"] as? String, attempt.addingTimeInterval(300).formatted(.iso8601))
        let snapshots = try daemon.cli(["snapshot", "list", "opts", "--format", "table"]).stdout
        XCTAssertEqual(snapshots.split(separator: "\n").count, 1, "a failed run left a snapshot: \(snapshots)")

        // From Docker, only a destination this daemon already writes to: a Docker user must not start a store
        // anywhere on the host.
        let elsewhere = "vfs://" + daemon.directory + "/elsewhere"
        let refused = try daemon.pluginErr("VolumeDriver.Create", #"{"Name":"dk","Opts":{"backup-every":"1d","#
                                           + #""backup-dest":"\#(elsewhere)"}}"#)
        XCTAssertTrue(refused.contains("a policy set from Docker may only name a destination"), refused)
        XCTAssertNotEqual(try daemon.cli(["inspect", "dk"]).status, 0, "the volume was made with a refused policy")
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.directory + "/elsewhere"))
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "opts", "--name", "first"]).status, 0)
        XCTAssertEqual(try daemon.cli(["backup", "create", "first", "--dest", destination]).status, 0)
        try daemon.pluginOK("VolumeDriver.Create", ["Name": "dk", "Opts": ["backup-every": "1d",
                                                                           "backup-dest": destination]])
        XCTAssertEqual(try policy("dk")["Dest"] as? String, destination)

        XCTAssertEqual(try daemon.cli(["backup", "policy", "delete", "opts"]).status, 0)
        XCTAssertEqual(try daemon.cli(["backup", "policy", "delete", "dk"]).status, 0)
        let listed = try daemon.cli(["backup", "policy", "list"]).stdout
        XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(listed.utf8)) as? [Any])?.count, 0, listed)
    }

    /// The daemon killed in the middle of a run's backup (its blocks written, not its manifest): restarted, the
    /// policy shows the attempt, tries again five minutes later, and the store then holds one backup that verifies.
    func testARunKilledPartWayIsTriedAgainAndLeavesNothingBehind() throws {
        XCTAssertEqual(try daemon.cli(["create", "data"]).status, 0)
        try TreeFixture.write(daemon.root + "/vfs/data/file", TreeFixture.randomBytes(200_000, seed: 99))
        XCTAssertEqual(try daemon.cli(["backup", "policy", "set", "data", "--dest", destination,
                                       "--every", "1h"]).status, 0)
        XCTAssertEqual(daemon.stop(), 0)
        daemon.environment["CONVOY_FAILPOINT"] = "file-backup-manifest-next"
        try daemon.start()
        let killedRun = start.addingTimeInterval(3_600 + 1)
        try setClock(killedRun)
        let deadline = Date().addingTimeInterval(30)
        while daemon.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertFalse(daemon.isRunning, "the failpoint did not kill the daemon")
        daemon.crash()

        daemon.environment["CONVOY_FAILPOINT"] = nil
        try daemon.start()
        let shown = try policy("data")
        XCTAssertEqual(shown["LastAttempt"] as? String, killedRun.formatted(.iso8601))
        XCTAssertNil(shown["LastSuccess"])
        XCTAssertEqual(shown["NextRun"] as? String, killedRun.addingTimeInterval(300).formatted(.iso8601))
        XCTAssertEqual(try backups("data").count, 0, "the killed run wrote no manifest")

        let retry = killedRun.addingTimeInterval(301)
        try setClock(retry)
        try waitForRun("data", at: retry)
        let snapshots = try daemon.cli(["snapshot", "list", "data", "--format", "table"]).stdout
        XCTAssertEqual(snapshots.split(separator: "\n").count, 1, "a snapshot was left: \(snapshots)")
        XCTAssertEqual(try backups("data").count, 1)
        let verified = try daemon.cli(["backup", "verify", destination, "--all", "--read-data-subset", "all"])
        XCTAssertEqual(verified.status, 0, verified.stdout + verified.stderr)
    }
}
