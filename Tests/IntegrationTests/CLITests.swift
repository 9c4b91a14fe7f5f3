import Foundation
import XCTest

/// The `convoy` CLI against the real daemon.
final class CLITests: XCTestCase {
    var daemon: DaemonHarness!

    override func setUpWithError() throws {
        daemon = try DaemonHarness()
        try daemon.start()
    }

    override func tearDown() {
        daemon.cleanUp()
    }

    private func json(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
    }

    func testRoundTrip() throws {
        let created = try daemon.cli(["create", "vol1", "--size", "10G"])
        XCTAssertEqual(created.status, 0, created.stderr)
        let volume = try json(created.stdout)
        XCTAssertEqual(volume["Name"] as? String, "vol1")
        XCTAssertEqual(volume["Driver"] as? String, "vfs")
        XCTAssertEqual(volume["Size"] as? Int, 10 << 30)

        let generated = try json(try daemon.cli(["create"]).stdout)
        let generatedName = try XCTUnwrap(generated["Name"] as? String)
        XCTAssertNotNil(generatedName.wholeMatch(of: /volume-[0-9a-f]{16}/), generatedName)

        // Convoy printed list as an object keyed by name.
        let list = try json(try daemon.cli(["list"]).stdout)
        XCTAssertEqual(Set(list.keys), ["vol1", generatedName])
        XCTAssertEqual((list["vol1"] as? [String: Any])?["Size"] as? Int, 10 << 30)

        let table = try daemon.cli(["list", "--format", "table"]).stdout
        XCTAssertTrue(table.hasPrefix("NAME"), table)
        XCTAssertTrue(table.contains("vol1") && table.contains("10G"), table)

        let mounted = try daemon.cli(["mount", "vol1"])
        XCTAssertEqual(mounted.status, 0, mounted.stderr)
        let mountpoint = mounted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(mountpoint, daemon.root + "/vfs/vol1")
        let inspected = try json(try daemon.cli(["inspect", "vol1"]).stdout)
        XCTAssertEqual(inspected["MountPoint"] as? String, mountpoint)
        XCTAssertEqual(inspected["References"] as? [String], ["convoy-cli"])
        XCTAssertEqual(try daemon.references(of: "vol1"), 1)

        let refused = try daemon.cli(["delete", "vol1"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("in use"), refused.stderr)
        XCTAssertEqual(try daemon.cli(["umount", "vol1"]).status, 0)
        XCTAssertEqual(try daemon.references(of: "vol1"), 0)

        let deleted = try daemon.cli(["delete", "vol1", generatedName])
        XCTAssertEqual(deleted.status, 0, deleted.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: mountpoint))
        XCTAssertEqual(try json(try daemon.cli(["list"]).stdout).count, 0)

        let info = try json(try daemon.cli(["info"]).stdout)
        let general = try XCTUnwrap(info["General"] as? [String: Any])
        XCTAssertEqual(general["Root"] as? String, daemon.root)
        XCTAssertEqual(general["DefaultDriver"] as? String, "vfs")
        XCTAssertEqual((info["vfs"] as? [String: String])?["Path"], daemon.root + "/vfs")
    }

    /// Convoy's scripts name the socket before the command (`convoy --socket PATH create v`, `convoy -s PATH`).
    func testSocketBeforeTheCommandAsConvoyTookIt() throws {
        let binary = DaemonHarness.binary
        let created = try Command.run(binary, ["--socket", daemon.socket, "create", "early", "--size", "1G"],
                                      timeout: 60)
        XCTAssertEqual(created.status, 0, created.stderr)
        XCTAssertEqual(try json(created.stdout)["Name"] as? String, "early")
        let listed = try Command.run(binary, ["-s", daemon.socket, "list"], timeout: 60)
        XCTAssertEqual(listed.status, 0, listed.stderr)
        XCTAssertEqual(Array(try json(listed.stdout).keys), ["early"])
        let snapshot = try Command.run(binary, ["--socket=" + daemon.socket, "snapshot", "create", "early",
                                                "--name", "early-1"], timeout: 60)
        XCTAssertEqual(snapshot.status, 0, snapshot.stderr)
        XCTAssertEqual(snapshot.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "early-1")
        // The same socket after the command works as before; a wrong socket before it is the one used.
        let wrong = try Command.run(binary, ["-s", daemon.directory + "/nosuch.sock", "inspect", "early"], timeout: 60)
        XCTAssertEqual(wrong.status, 1)
        XCTAssertTrue(wrong.stderr.contains("nosuch.sock"), wrong.stderr)
    }

    func testErrorsGoToStderrWithExitCodeOne() throws {
        let cases: [([String], String)] = [
            (["inspect", "nosuch"], "no volume named 'nosuch'"),
            (["delete", "nosuch"], "no volume named 'nosuch'"),
            (["create", "../escape"], "invalid volume name"),
            (["create", "x"], "2 to 64"),
            (["create", "okay", "--driver", "nfs"], "unknown driver 'nfs'"),
            (["create", "okay", "--size", "10GB"], "invalid size"),
            (["create", "okay", "--opt", "colour=blue"], "unknown option 'colour'"),
            (["mount", "nosuch"], "no volume named"),
        ]
        for (arguments, expected) in cases {
            let result = try daemon.cli(arguments)
            XCTAssertEqual(result.status, 1, "\(arguments)")
            XCTAssertTrue(result.stderr.contains(expected), "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stdout, "", "\(arguments)")
        }
    }

    func testClearMessageWhenTheDaemonIsNotRunning() throws {
        let result = try Command.run(DaemonHarness.binary, ["list", "--socket", daemon.directory + "/nobody.sock"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("cannot reach the convoy daemon"), result.stderr)
        XCTAssertTrue(result.stderr.contains("convoy daemon"), result.stderr)
    }
}
