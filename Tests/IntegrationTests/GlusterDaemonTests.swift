import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The glusterfs driver through the real daemon, against the real glusterd of scripts/gluster-server: volumes are
/// directories of a gluster volume, seen on its bricks; sizes become quotas; snapshots and backups are the daemon's
/// file backups.
final class GlusterDaemonTests: XCTestCase {
    var gluster: GlusterServer!
    var daemon: DaemonHarness!

    override func setUpWithError() throws {
        gluster = try GlusterServer.fromEnvironment()
        daemon = try DaemonHarness()
        // Lazy volumes hydrate slowly (0.3 s a file), so that a test can use one before it is finished.
        daemon.extraArguments = gluster.daemonArguments() + ["--hydration-pause", "0.3"]
        try daemon.start()
    }

    override func tearDown() {
        daemon?.cleanUp()
    }

    /// Volume names unique to this test: the pools are shared by the whole run.
    func unique(_ base: String) -> String { base + "-" + UUID().uuidString.prefix(8).lowercased() }

    func poolMount(_ pool: String) -> String { daemon.root + "/glusterfs/mounts/" + pool }

    func inspect(_ volume: String) throws -> [String: Any] {
        let result = try daemon.cli(["inspect", volume])
        XCTAssertEqual(result.status, 0, result.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    func testLifeCycleThroughTheCLIWithTheDataOnTheBrickAndTheSizeAsAQuota() throws {
        let name = unique("cli")
        let created = try daemon.cli(["create", name])
        XCTAssertEqual(created.status, 0, created.stderr)
        let volume = try inspect(name)
        XCTAssertEqual(volume["Size"] as? Int, 64 << 20, "the default size is the volume's size")
        let info = try XCTUnwrap(volume["DriverInfo"] as? [String: String])
        XCTAssertEqual(info["Pool"], gluster.pool)
        XCTAssertEqual(info["SizeEnforced"], "true", "\(info)")

        let mounted = try daemon.cli(["mount", name])
        XCTAssertEqual(mounted.status, 0, mounted.stderr)
        let mountpoint = poolMount(gluster.pool) + "/" + name
        XCTAssertTrue(mounted.stdout.contains(mountpoint), mounted.stdout)
        try Data("on gluster\n".utf8).write(to: URL(fileURLWithPath: mountpoint + "/hello"))
        XCTAssertEqual(try String(contentsOfFile: gluster.brick + "/\(name)/hello", encoding: .utf8), "on gluster\n",
                       "the file is on the gluster volume's brick")
        // The quota is what df shows inside the volume (features.quota-deem-statfs).
        let df = try Command.check("/bin/df", ["-B1", "--output=size", mountpoint])
        XCTAssertEqual(df.split(separator: "\n").last.map { $0.trimmingCharacters(in: .whitespaces) }, "\(64 << 20)",
                       df)

        let status = try XCTUnwrap(volume["Status"] as? [String: String], "\(volume)")
        XCTAssertEqual(status["poolMount"], "connected")
        XCTAssertNil(status["poolProblem"])

        let refused = try daemon.cli(["delete", name])
        XCTAssertNotEqual(refused.status, 0, "a mounted volume is not deleted")
        XCTAssertEqual(try daemon.cli(["umount", name]).status, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: mountpoint + "/hello"),
                      "the pool stays mounted for the other volumes")
        let deleted = try daemon.cli(["delete", name])
        XCTAssertEqual(deleted.status, 0, deleted.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: gluster.brick + "/" + name), "deleted on the brick too")
        let quotas = try Command.run("/usr/sbin/gluster",
                                     ["--mode=script", "volume", "quota", gluster.pool, "list", "/" + name])
        XCTAssertFalse(quotas.stdout.contains("/" + name + " "), "its quota went with it: \(quotas.stdout)")
    }

    func testLifeCycleThroughThePluginAPIInAnotherPool() throws {
        let caps = try daemon.pluginOK("VolumeDriver.Capabilities", [:])
        XCTAssertEqual((caps["Capabilities"] as? [String: String])?["Scope"], "global",
                       "gluster volumes are reachable from every host")

        let name = unique("api")
        try daemon.pluginOK("VolumeDriver.Create", ["Name": name, "Opts": ["size": "32M", "pool": gluster.replicaPool]])
        let mount = try daemon.pluginOK("VolumeDriver.Mount", ["Name": name, "ID": "container-1"])
        let mountpoint = try XCTUnwrap(mount["Mountpoint"] as? String)
        XCTAssertEqual(mountpoint, poolMount(gluster.replicaPool) + "/" + name)
        try Data("replicated".utf8).write(to: URL(fileURLWithPath: mountpoint + "/f"))
        for brick in gluster.replicaBricks {
            XCTAssertEqual(try String(contentsOfFile: brick + "/\(name)/f", encoding: .utf8), "replicated",
                           "on both bricks")
        }
        let listed = try daemon.pluginOK("VolumeDriver.List", [:])
        XCTAssertTrue(((listed["Volumes"] as? [[String: Any]]) ?? []).contains { $0["Name"] as? String == name })

        let get = try daemon.pluginOK("VolumeDriver.Get", ["Name": name])
        let status = try XCTUnwrap((get["Volume"] as? [String: Any])?["Status"] as? [String: Any])
        XCTAssertEqual(status["pool"] as? String, gluster.replicaPool)
        XCTAssertEqual(status["poolMount"] as? String, "connected")
        XCTAssertEqual(status["size"] as? Int, 32 << 20)
        // The replica pool has no quota: the size is recorded, and Status says it is not enforced and how to fix it.
        XCTAssertTrue((status["sizeNotEnforced"] as? String)?.contains(
            "gluster volume quota \(gluster.replicaPool) enable") ?? false, "\(status)")

        XCTAssertTrue(try daemon.pluginErr("VolumeDriver.Remove", #"{"Name":"\#(name)"}"#).contains("in use"))
        try daemon.pluginOK("VolumeDriver.Unmount", ["Name": name, "ID": "container-1"])
        try daemon.pluginOK("VolumeDriver.Remove", ["Name": name])
        for brick in gluster.replicaBricks {
            XCTAssertFalse(FileManager.default.fileExists(atPath: brick + "/" + name))
        }
        let bad = try daemon.pluginErr("VolumeDriver.Create", #"{"Name":"x\#(name)","Opts":{"pool":"../etc"}}"#)
        XCTAssertTrue(bad.contains("pool: invalid gluster volume name"), bad)
        // Another host's convoy made a volume of that name in the shared pool.
        let otherHost = poolMount(gluster.pool) + "/other-host-" + name
        try FileManager.default.createDirectory(atPath: otherHost, withIntermediateDirectories: false)
        try Data("theirs".utf8).write(to: URL(fileURLWithPath: otherHost + "/data"))
        let taken = try daemon.pluginErr("VolumeDriver.Create", #"{"Name":"other-host-\#(name)"}"#)
        XCTAssertTrue(taken.contains("already holds a directory other-host-\(name)"), taken)
        XCTAssertEqual(try String(contentsOfFile: otherHost + "/data", encoding: .utf8), "theirs",
                       "another host's data is left alone")
        try FileManager.default.removeItem(atPath: otherHost)
        let absent = try daemon.pluginErr("VolumeDriver.Create",
                                          #"{"Name":"y\#(name)","Opts":{"pool":"no-such-pool"}}"#)
        XCTAssertTrue(absent.contains("cannot mount gluster volume no-such-pool"), absent)
    }

    func testSnapshotBackupAndRestoreRoundTrip() throws {
        let source = unique("src")
        XCTAssertEqual(try daemon.cli(["create", source, "--size", "200M"]).status, 0)
        XCTAssertEqual(try daemon.cli(["mount", source]).status, 0)
        let directory = poolMount(gluster.pool) + "/" + source
        try TreeDescription.populate(directory)
        let original = try TreeDescription.describe(directory)
        let snapshot = try daemon.cli(["snapshot", "create", source, "--name", source + "-snap"])
        XCTAssertEqual(snapshot.status, 0, snapshot.stderr)
        let destination = "vfs://" + daemon.directory + "/backups"
        let backup = try daemon.cli(["backup", "create", source + "-snap", "--dest", destination])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let url = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let copy = unique("copy")
        let restored = try daemon.cli(["create", copy, "--backup", url])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        let copyDirectory = poolMount(gluster.pool) + "/" + copy
        XCTAssertEqual(try TreeDescription.describe(copyDirectory), original,
                       "equal byte for byte, with owners, modes and times")
        // Link counts differ on a brick: gluster keeps a hard link of every file under .glusterfs.
        XCTAssertEqual(try TreeDescription.describe(gluster.brick + "/" + copy, directoryTimes: false,
                                                    linkCounts: false),
                       try TreeDescription.describe(copyDirectory, directoryTimes: false, linkCounts: false),
                       "the brick holds the restored tree")

        // Lazily: usable at once (an overlay whose upper layer stays under the daemon's root, since overlayfs
        // cannot write into a FUSE filesystem), then its tree is copied into the pool once hydrated and unmounted.
        let lazyName = unique("lazy")
        let lazy = try daemon.cli(["create", lazyName, "--backup", url, "--lazy"])
        XCTAssertEqual(lazy.status, 0, lazy.stderr)
        let merged = try daemon.cli(["mount", lazyName]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(merged.hasPrefix(daemon.root + "/lazy/"), merged)
        try Data("written while lazy\n".utf8).write(to: URL(fileURLWithPath: merged + "/written"))
        let waited = try daemon.cli(["hydrate", lazyName, "--wait"])
        XCTAssertEqual(waited.status, 0, waited.stderr)
        XCTAssertEqual(try daemon.cli(["umount", lazyName]).status, 0)
        let lazyDirectory = poolMount(gluster.pool) + "/" + lazyName
        let deadline = Date().addingTimeInterval(60)
        while try daemon.cli(["inspect", lazyName]).stdout.contains("LazyBackup"), Date() < deadline { usleep(200_000) }
        XCTAssertFalse(try daemon.cli(["inspect", lazyName]).stdout.contains("LazyBackup"),
                       "the lazy volume is finished")
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.root + "/lazy/" + lazyName),
                       "nothing of it is left under the root")
        XCTAssertEqual(try String(contentsOfFile: gluster.brick + "/" + lazyName + "/written", encoding: .utf8),
                       "written while lazy\n")
        try FileManager.default.removeItem(atPath: lazyDirectory + "/written")
        XCTAssertEqual(try TreeDescription.describe(lazyDirectory, directoryTimes: false),
                       try TreeDescription.describe(copyDirectory, directoryTimes: false),
                       "the backup's tree, in the pool")
        XCTAssertEqual(try daemon.cli(["mount", lazyName]).stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                       lazyDirectory)
        XCTAssertEqual(try daemon.cli(["umount", lazyName]).status, 0)
        XCTAssertEqual(try daemon.cli(["delete", lazyName]).status, 0)

        XCTAssertEqual(try daemon.cli(["umount", source]).status, 0)
        for volume in [source, copy] { XCTAssertEqual(try daemon.cli(["delete", volume]).status, 0) }
    }
}
