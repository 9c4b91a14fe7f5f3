import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// What happens to gluster volumes when parts of gluster die: a replica brick, the pool's FUSE client, glusterd.
final class GlusterFailoverTests: XCTestCase {
    var gluster: GlusterServer!
    var daemon: DaemonHarness!

    override func setUpWithError() throws {
        gluster = try GlusterServer.fromEnvironment()
        daemon = try DaemonHarness()
    }

    override func tearDown() {
        // A test that failed half-way must not leave glusterd down for the next one.
        if let gluster, gluster.glusterdPID.map({ kill($0, 0) != 0 }) ?? true { try? gluster.startGlusterd() }
        daemon?.cleanUp()
    }

    func start(checkInterval: Int) throws {
        daemon.extraArguments = gluster.daemonArguments(checkInterval: checkInterval)
        try daemon.start()
    }

    func unique(_ base: String) -> String { base + "-" + UUID().uuidString.prefix(8).lowercased() }

    func status(_ volume: String) throws -> [String: String] {
        let reply = try daemon.pluginOK("VolumeDriver.Get", ["Name": volume])
        let status = (reply["Volume"] as? [String: Any])?["Status"] as? [String: Any] ?? [:]
        return status.compactMapValues { $0 as? String }
    }

    func mount(_ volume: String, id: String) throws -> String {
        try XCTUnwrap(try daemon.pluginOK("VolumeDriver.Mount", ["Name": volume, "ID": id])["Mountpoint"] as? String)
    }

    /// What the writers of the replica tests write: file-N holding line-N.
    static let writtenFiles = Dictionary(uniqueKeysWithValues: (1...60).map { ("file-\($0)", "line-\($0)\n") })
    static let writerScript = "set -e; for i in $(seq 1 60); do echo line-$i > %@/file-$i; sleep 0.05; done"

    func testReplicaKeepsServingWithABrickKilledAndSelfHealRestoresIt() throws {
        try start(checkInterval: 10)
        let name = unique("rep")
        try daemon.pluginOK("VolumeDriver.Create", ["Name": name, "Opts": ["pool": gluster.replicaPool]])
        let mountpoint = try mount(name, id: "writer")
        let (survivor, victim) = (gluster.replicaBricks[0], gluster.replicaBricks[1])
        let brickPID = try XCTUnwrap(GlusterServer.brickPID(of: victim), "the brick process of \(victim)")

        // A writer runs while the brick is killed under it: every write must succeed.
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/bin/sh")
        writer.arguments = ["-c", Self.writerScript.replacingOccurrences(of: "%@", with: "'\(mountpoint)'")]
        try writer.run()
        usleep(1_000_000)
        try GlusterServer.kill9AndWait(brickPID)
        writer.waitUntilExit()
        XCTAssertEqual(writer.terminationStatus, 0, "writes went on while a replica brick was down")
        XCTAssertEqual(try String(contentsOfFile: mountpoint + "/file-60", encoding: .utf8), "line-60\n")
        XCTAssertTrue(FileManager.default.fileExists(atPath: survivor + "/\(name)/file-60"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: victim + "/\(name)/file-60"),
                       "the dead brick missed the late writes")

        try gluster.restartBrickAndWaitForHeal(brick: victim, directory: name, files: Self.writtenFiles)
        try daemon.pluginOK("VolumeDriver.Unmount", ["Name": name, "ID": "writer"])
        try daemon.pluginOK("VolumeDriver.Remove", ["Name": name])
    }

    /// The pool's FUSE client dies under a mounted volume: its Status says so, and the next Mount (a container
    /// starting) remounts the pool, so the data is back without a daemon restart.
    func testADeadPoolMountIsReportedAndRepairedByTheNextMount() throws {
        try start(checkInterval: 3600)
        let name = unique("dead")
        try daemon.pluginOK("VolumeDriver.Create", ["Name": name])
        let mountpoint = try mount(name, id: "first")
        try Data("survives".utf8).write(to: URL(fileURLWithPath: mountpoint + "/data"))
        let poolMount = daemon.root + "/glusterfs/mounts/" + gluster.pool
        try GlusterServer.kill9AndWait(try XCTUnwrap(GlusterServer.clientPID(of: poolMount)))
        XCTAssertNil(try? String(contentsOfFile: mountpoint + "/data", encoding: .utf8),
                     "the dead client's mount answers nothing")

        let broken = try status(name)
        XCTAssertEqual(broken["poolMount"], "failing: Transport endpoint is not connected", "\(broken)")
        XCTAssertNotNil(broken["poolProblem"], "\(broken)")

        XCTAssertEqual(try mount(name, id: "second"), mountpoint)
        XCTAssertEqual(try String(contentsOfFile: mountpoint + "/data", encoding: .utf8), "survives")
        let healed = try status(name)
        XCTAssertEqual(healed["poolMount"], "connected")
        XCTAssertNil(healed["poolProblem"])
        XCTAssertTrue(healed["poolLastRecovery"]?.contains("Transport endpoint is not connected") ?? false, "\(healed)")
        XCTAssertEqual(try daemon.references(of: name), 2)
        for id in ["first", "second"] { try daemon.pluginOK("VolumeDriver.Unmount", ["Name": name, "ID": id]) }
        try daemon.pluginOK("VolumeDriver.Remove", ["Name": name])
    }

    /// glusterd and the pool's FUSE client die: the periodic check cannot remount while glusterd is down and Status
    /// says why; once glusterd is back, the check remounts on its own and the data is readable again.
    func testThePeriodicCheckRemountsOnceGlusterdIsBack() throws {
        try start(checkInterval: 1)
        let name = unique("check")
        XCTAssertEqual(try daemon.cli(["create", name]).status, 0)
        let mounted = try daemon.cli(["mount", name])
        XCTAssertEqual(mounted.status, 0, mounted.stderr)
        let mountpoint = daemon.root + "/glusterfs/mounts/\(gluster.pool)/\(name)"
        try Data("still here".utf8).write(to: URL(fileURLWithPath: mountpoint + "/data"))

        try GlusterServer.kill9AndWait(try XCTUnwrap(gluster.glusterdPID))
        try GlusterServer.kill9AndWait(try XCTUnwrap(GlusterServer.clientPID(
            of: daemon.root + "/glusterfs/mounts/" + gluster.pool)))
        var meanwhile: [String: String] = [:]
        try waitUntil("Status to report the failed remount", timeout: 60) {
            meanwhile = try self.status(name)
            return meanwhile["poolRemountFailure"] != nil
        }
        XCTAssertTrue(meanwhile["poolProblem"]?.contains("Transport endpoint is not connected") ?? false,
                      "\(meanwhile)")
        XCTAssertTrue(meanwhile["poolRemountFailure"]?.contains("cannot mount gluster volume \(gluster.pool)") ?? false,
                      "\(meanwhile)")
        let inspected = try daemon.cli(["inspect", name])
        XCTAssertTrue(inspected.stdout.contains("poolRemountFailure"),
                      "convoy inspect shows it too: \(inspected.stdout)")

        try gluster.startGlusterd()
        try waitUntil("the check to remount the pool", timeout: 60) {
            (try? String(contentsOfFile: mountpoint + "/data", encoding: .utf8)) == "still here"
        }
        // The check records the recovery once the new mount has answered its probe: moments after the data is back.
        var healed: [String: String] = [:]
        try waitUntil("Status to report the recovery", timeout: 10) {
            healed = try self.status(name)
            return healed["poolProblem"] == nil
        }
        XCTAssertEqual(healed["poolMount"], "connected", "\(healed)")
        XCTAssertNil(healed["poolRemountFailure"])
        XCTAssertTrue(healed["poolLastRecovery"]?.contains("Transport endpoint is not connected") ?? false, "\(healed)")
        XCTAssertTrue(daemon.isRunning)
        XCTAssertEqual(try daemon.cli(["umount", name]).status, 0)
        XCTAssertEqual(try daemon.cli(["delete", name]).status, 0)
    }

    /// A daemon restart with volumes in use reports no repairs. After a crash during which the pools' FUSE clients
    /// died too, the next start remounts the pools: the one of a volume in use (reconciliation mounts it again) and
    /// one whose volumes have no references (the driver's start remounts every pool an earlier run used).
    func testRestartsKeepVolumesAndACrashWithDeadMountsIsRepairedAtStart() throws {
        try start(checkInterval: 3600)
        let (inUse, idle) = (unique("in-use"), unique("idle"))
        try daemon.pluginOK("VolumeDriver.Create", ["Name": inUse])
        try daemon.pluginOK("VolumeDriver.Create", ["Name": idle, "Opts": ["pool": gluster.replicaPool]])
        var mountpoints: [String: String] = [:]
        for volume in [inUse, idle] {
            mountpoints[volume] = try mount(volume, id: "c1")
            try Data(volume.utf8).write(to: URL(fileURLWithPath: mountpoints[volume, default: ""] + "/data"))
        }
        try daemon.pluginOK("VolumeDriver.Unmount", ["Name": idle, "ID": "c1"])

        XCTAssertEqual(daemon.stop(), 0)
        try daemon.start()
        XCTAssertFalse(daemon.log_().contains("reconcile:"),
                       "nothing to repair after a clean restart: \(daemon.log_())")
        XCTAssertEqual(try daemon.references(of: inUse), 1)

        daemon.crash()
        let mounts = daemon.root + "/glusterfs/mounts/"
        for pool in [gluster.pool, gluster.replicaPool] {
            try GlusterServer.kill9AndWait(try XCTUnwrap(GlusterServer.clientPID(of: mounts + pool)))
        }
        try daemon.start()
        for volume in [inUse, idle] {
            XCTAssertEqual(try String(contentsOfFile: mountpoints[volume, default: ""] + "/data", encoding: .utf8),
                           volume, "remounted at start, before any operation")
            XCTAssertEqual(try status(volume)["poolMount"], "connected")
        }
        try daemon.pluginOK("VolumeDriver.Unmount", ["Name": inUse, "ID": "c1"])
        for volume in [inUse, idle] { try daemon.pluginOK("VolumeDriver.Remove", ["Name": volume]) }
    }
}
