import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Start, stop, crash and restart of the real daemon: nothing lost, nothing shared by accident.
final class DaemonLifecycleTests: XCTestCase {
    var daemon: DaemonHarness!

    override func setUpWithError() throws {
        daemon = try DaemonHarness()
    }

    override func tearDown() {
        daemon.cleanUp()
    }

    func testSecondDaemonOnTheSameRootIsRefused() throws {
        try daemon.start()
        let second = try Command.run(DaemonHarness.binary, [
            "daemon", "--root", daemon.root, "--socket", daemon.directory + "/other.sock",
            "--plugin-socket", daemon.directory + "/other-plugin.sock",
        ], timeout: 30)
        XCTAssertEqual(second.status, 1)
        XCTAssertTrue(second.stderr.contains("already using root \(daemon.root)"), second.stderr)
        XCTAssertTrue(second.stderr.contains("pid \(daemon.process?.processIdentifier ?? 0)"), second.stderr)
        XCTAssertTrue(daemon.isRunning)
        XCTAssertEqual(try daemon.plugin("Plugin.Activate").status, 200)
    }

    func testAnotherDaemonsSocketIsNotStolen() throws {
        try daemon.start()
        let other = try Command.run(DaemonHarness.binary, [
            "daemon", "--root", daemon.directory + "/root2", "--socket", daemon.socket,
            "--plugin-socket", daemon.directory + "/p2.sock",
        ], timeout: 30)
        XCTAssertEqual(other.status, 1)
        XCTAssertTrue(other.stderr.contains("another process is serving \(daemon.socket)"), other.stderr)
        XCTAssertEqual(try daemon.cli(["list"]).status, 0)
    }

    func testKillNineThenRestartLosesNoVolumeAndNoReference() throws {
        try daemon.start()
        try daemon.pluginOK("VolumeDriver.Create", ["Name": "db", "Opts": ["size": "1G"]])
        try daemon.pluginOK("VolumeDriver.Create", ["Name": "cache"])
        let mountpoint = try XCTUnwrap(
            try daemon.pluginOK("VolumeDriver.Mount", ["Name": "db", "ID": "c1"])["Mountpoint"] as? String)
        try daemon.pluginOK("VolumeDriver.Mount", ["Name": "db", "ID": "c2"])
        try Data("rows".utf8).write(to: URL(fileURLWithPath: mountpoint + "/table"))

        daemon.crash()
        // The dead daemon's sockets are still on disk; the new one must replace them.
        XCTAssertTrue(FileManager.default.fileExists(atPath: daemon.pluginSocket))
        try daemon.start()

        XCTAssertEqual(try daemon.references(of: "db"), 2)
        XCTAssertEqual(try daemon.pluginOK("VolumeDriver.Path", ["Name": "db"])["Mountpoint"] as? String, mountpoint)
        let names = (try daemon.pluginOK("VolumeDriver.List", [:])["Volumes"]
                     as? [[String: Any]])?.compactMap { $0["Name"] as? String }
        XCTAssertEqual(names?.sorted(), ["cache", "db"])
        XCTAssertEqual(try String(contentsOfFile: mountpoint + "/table", encoding: .utf8), "rows")

        try daemon.pluginOK("VolumeDriver.Unmount", ["Name": "db", "ID": "c1"])
        XCTAssertTrue(try daemon.pluginErr("VolumeDriver.Remove", #"{"Name":"db"}"#).contains("in use"))
        try daemon.pluginOK("VolumeDriver.Unmount", ["Name": "db", "ID": "c2"])
        try daemon.pluginOK("VolumeDriver.Remove", ["Name": "db"])
    }

    func testSigtermStopsCleanlyAndKeepsReferences() throws {
        try daemon.start()
        try daemon.pluginOK("VolumeDriver.Create", ["Name": "keep"])
        try daemon.pluginOK("VolumeDriver.Mount", ["Name": "keep", "ID": "x"])
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.pluginSocket), "sockets removed on a clean stop")
        try daemon.start()
        XCTAssertEqual(try daemon.references(of: "keep"), 1)
    }

    func testRestartRepairsAVanishedVolumeAndSaysSo() throws {
        try daemon.start()
        try daemon.pluginOK("VolumeDriver.Create", ["Name": "lost"])
        daemon.stop()
        try FileManager.default.removeItem(atPath: daemon.root + "/vfs/lost")
        try daemon.start()
        XCTAssertTrue(daemon.log_().contains("volume lost: its data vanished"), daemon.log_())
        XCTAssertTrue(try daemon.pluginErr("VolumeDriver.Get", #"{"Name":"lost"}"#).contains("no volume named"))
    }

    func testBadDaemonOptionsAreNamed() throws {
        let cases: [([String], String)] = [
            (["--drivers", "nosuch"], "unknown driver 'nosuch'"),
            (["--driver-opts", "vfs.nope=1"], "unknown option 'vfs.nope'"),
            (["--driver-opts", "vfs.path=relative"], "vfs.path"),
            (["--log-level", "loud"], "--log-level"),
            (["--socket-group", "no-such-group"], "--socket-group: no group named 'no-such-group'"),
            (["--host-id", "a/b"], "--host-id: 'a/b' is not a host id"),
        ]
        for (extra, expected) in cases {
            let result = try Command.run(DaemonHarness.binary, daemon.arguments + extra, timeout: 30)
            XCTAssertEqual(result.status, 1, "\(extra)")
            XCTAssertTrue(result.stderr.contains(expected), "\(extra): \(result.stderr)")
        }
    }

    /// Like dockerd's `-G`: members of the group use the CLI without root; others are refused by the socket.
    func testASocketGroupLetsItsMembersInAndNobodyElse() throws {
        daemon.extraArguments = ["--socket-group", "users"]
        try daemon.start()
        var info = stat()
        XCTAssertEqual(lstat(daemon.socket, &info), 0)
        XCTAssertEqual(info.st_gid, getgrnam("users")?.pointee.gr_gid)
        XCTAssertEqual(info.st_mode & 0o777, 0o660)
        let member = try Command.run("/sbin/runuser", ["-u", "nobody", "-g", "users", "--", DaemonHarness.binary,
                                                       "list", "--socket", daemon.socket], timeout: 30)
        XCTAssertEqual(member.status, 0, member.stderr)
        let listed = try JSONSerialization.jsonObject(with: Data(member.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(listed?.count, 0, member.stdout)
        let stranger = try Command.run("/sbin/runuser", ["-u", "nobody", "--", DaemonHarness.binary,
                                                         "list", "--socket", daemon.socket], timeout: 30)
        XCTAssertEqual(stranger.status, 1)
        XCTAssertTrue(stranger.stderr.contains("Permission denied"), stranger.stderr)
        // The plugin socket stays root's alone.
        XCTAssertEqual(lstat(daemon.pluginSocket, &info), 0)
        XCTAssertEqual(info.st_gid, 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
    }

    func testDriverOptionsAreSavedForTheNextStart() throws {
        let elsewhere = daemon.directory + "/volumes-here"
        daemon.extraArguments = ["--drivers", "vfs", "--driver-opts", "vfs.path=\(elsewhere)"]
        try daemon.start()
        try daemon.pluginOK("VolumeDriver.Create", ["Name": "placed"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: elsewhere + "/placed"))
        daemon.stop()
        daemon.extraArguments = []
        try daemon.start()
        let info = try daemon.cli(["info"])
        XCTAssertTrue(info.stdout.contains(elsewhere), info.stdout)
        XCTAssertEqual(try daemon.references(of: "placed"), 0)
    }

    /// The host id (issue 19): by default this machine's hostname and machine id, the same at every start; a
    /// `--host-id` replaces it, and is kept by the starts after it.
    func testTheHostIdIsShownAndKeptAcrossStarts() throws {
        let machine = try String(contentsOfFile: "/etc/machine-id", encoding: .utf8)
        let suffix = "-" + machine.trimmingCharacters(in: .whitespacesAndNewlines).prefix(12).lowercased()
        func shown() throws -> String {
            let info = try daemon.cli(["info", "--format", "json"])
            let general = try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any]
            return (general?["General"] as? [String: Any])?["HostID"] as? String ?? "none in \(info.stdout)"
        }
        try daemon.start()
        let derived = try shown()
        XCTAssertTrue(derived.hasSuffix(suffix), "\(derived) does not end with \(suffix)")
        XCTAssertTrue(try daemon.cli(["info", "--format", "table"]).stdout.contains("HostID"))
        daemon.stop()
        try daemon.start()
        XCTAssertEqual(try shown(), derived)
        daemon.stop()
        daemon.extraArguments = ["--host-id", "node-b"]
        try daemon.start()
        XCTAssertEqual(try shown(), "node-b")
        XCTAssertTrue(daemon.log_().contains("host id changes from \(derived) to node-b"), daemon.log_())
        daemon.stop()
        daemon.extraArguments = []
        try daemon.start()
        XCTAssertEqual(try shown(), "node-b")
    }

    func testSocketsThroughASymlinkedDirectory() throws {
        // Debian's /var/run is a symlink to /run: the default client socket lives behind one.
        try FileManager.default.createDirectory(atPath: daemon.directory + "/real-run",
                                                withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: daemon.directory + "/var-run",
                                                   withDestinationPath: "real-run")
        daemon.socket = daemon.directory + "/var-run/convoy/convoy.sock"
        try daemon.start()
        XCTAssertTrue(FileManager.default.fileExists(atPath: daemon.directory + "/real-run/convoy/convoy.sock"))
        XCTAssertEqual(try daemon.cli(["list"]).status, 0)
    }
}
