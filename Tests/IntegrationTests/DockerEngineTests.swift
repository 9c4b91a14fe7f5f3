import Foundation
import XCTest

/// A real Docker engine as the client of the plugin: discovery through /run/docker/plugins, volumes created,
/// listed, inspected, shared by containers, kept across a plugin restart, and removed only when unused.
final class DockerEngineTests: XCTestCase {
    var daemon: DaemonHarness!
    var engine: DockerEngine!
    var driver = ""

    override func setUpWithError() throws {
        let setup = try DockerPluginSetup.start(prefix: "cvt")
        (driver, daemon, engine) = (setup.driver, setup.daemon, setup.engine)
    }

    override func tearDown() {
        engine?.stop()
        daemon?.cleanUp()
    }

    private func waitFor(_ what: String, timeout: TimeInterval = 30, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            usleep(100_000)
        }
        XCTFail("timed out waiting for \(what)")
    }

    func testVolumeLifeCycleSharedByTwoContainersAcrossAPluginRestart() throws {
        try engine.dockerOK(["volume", "create", "-d", driver, "--name", "shared", "-o", "size=1G"])
        XCTAssertTrue(try engine.dockerOK(["volume", "ls", "--format", "{{.Driver}} {{.Name}}"])
            .contains("\(driver) shared"))
        let status = try engine.dockerOK(["volume", "inspect", "shared", "--format", "{{json .Status}}"])
        XCTAssertTrue(status.contains(#""driver":"vfs""#) && status.contains(#""size":1073741824"#), status)
        let hostPath = daemon.root + "/vfs/shared"
        XCTAssertTrue(FileManager.default.fileExists(atPath: hostPath))

        // Two containers use the volume at once and see the same data.
        try engine.dockerOK(["run", "-d", "--name", "c1", "--network", "none", "-v", "shared:/data", "tiny:latest",
                             "sh", "-c", "echo hello > /data/greeting; exec sleep 600"])
        try waitFor("c1 to write") { FileManager.default.fileExists(atPath: hostPath + "/greeting") }
        try engine.dockerOK(["run", "-d", "--name", "c2", "--network", "none", "-v", "shared:/data", "tiny:latest",
                             "sleep", "600"])
        XCTAssertEqual(try engine.dockerOK(["exec", "c2", "cat", "/data/greeting"]), "hello")
        XCTAssertEqual(try daemon.references(of: "shared"), 2)

        // Stopping one leaves the other's mount in place.
        try engine.dockerOK(["stop", "-t", "1", "c1"])
        try waitFor("c1's reference to go") { try self.daemon.references(of: "shared") == 1 }
        try engine.dockerOK(["exec", "c2", "sh", "-c", "echo from-c2 >> /data/greeting"])
        XCTAssertEqual(try String(contentsOfFile: hostPath + "/greeting", encoding: .utf8), "hello\nfrom-c2\n")

        // Restarting convoy while c2 runs: the container keeps working and its reference continues.
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertEqual(try engine.dockerOK(["exec", "c2", "cat", "/data/greeting"]), "hello\nfrom-c2")
        try daemon.start()
        XCTAssertEqual(try daemon.references(of: "shared"), 1)
        XCTAssertTrue(try engine.dockerOK(["volume", "inspect", "shared", "--format", "{{json .Status}}"])
            .contains(#""references":1"#))

        // Remove is refused while a mount holds the volume: Docker's own check for containers, ours for the
        // CLI's reference, whose error Docker passes on.
        try engine.dockerOK(["rm", "-f", "c1", "c2"])
        try waitFor("the containers' references to go") { try self.daemon.references(of: "shared") == 0 }
        XCTAssertEqual(try daemon.cli(["mount", "shared"]).status, 0)
        let refused = try engine.docker(["volume", "rm", "shared"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("in use by 1 mount"), refused.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: hostPath + "/greeting"))

        XCTAssertEqual(try daemon.cli(["umount", "shared"]).status, 0)
        try engine.dockerOK(["volume", "rm", "shared"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: hostPath), "docker volume rm really removes the data")
        XCTAssertFalse(try engine.dockerOK(["volume", "ls", "-q"]).contains("shared"))
    }

    func testImplicitCreateThroughVolumeDriver() throws {
        let output = try engine.dockerOK(["run", "--rm", "--network", "none", "--volume-driver", driver,
                                          "-v", "implicit:/data", "tiny:latest", "sh", "-c",
                                          "echo made > /data/f; cat /data/f"])
        XCTAssertEqual(output, "made")
        XCTAssertEqual(try String(contentsOfFile: daemon.root + "/vfs/implicit/f", encoding: .utf8), "made\n")
        XCTAssertEqual(try daemon.references(of: "implicit"), 0, "the finished container released its mount")
        let bad = try engine.docker(["volume", "create", "-d", driver, "--name", "bad", "-o", "colour=blue"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("unknown option 'colour'"), bad.stderr)
    }

    func testDockerCreatesAVolumeFromABackup() throws {
        try engine.dockerOK(["volume", "create", "-d", driver, "--name", "origin"])
        try engine.dockerOK(["run", "--rm", "--network", "none", "-v", "origin:/data", "tiny:latest",
                             "sh", "-c", "mkdir /data/app && echo 'state of the app' > /data/app/state "
                                 + "&& chmod 600 /data/app/state"])
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "origin", "--name", "origin-snap"]).status, 0)
        let backup = try daemon.cli(["backup", "create", "origin-snap", "--dest", "vfs://\(daemon.directory)/backups"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let url = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        try engine.dockerOK(["volume", "create", "-d", driver, "--name", "restored", "-o", "backup=\(url)"])
        let read = try engine.dockerOK(["run", "--rm", "--network", "none", "-v", "restored:/data", "tiny:latest",
                                        "sh", "-c", "cat /data/app/state; stat -c %a /data/app/state"])
        XCTAssertEqual(read, "state of the app\n600")
        let bad = try engine.docker(["volume", "create", "-d", driver, "--name", "nothing", "-o",
                                     "backup=vfs://\(daemon.directory)/backups?backup=backup-1&volume=none"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("no backup backup-1"), bad.stderr)
        // A store this daemon never wrote is refused through Docker too, before anything is read from it.
        let foreign = try engine.docker(["volume", "create", "-d", driver, "--name", "foreign", "-o",
                                         "backup=vfs:///nowhere?backup=backup-1&volume=none"])
        XCTAssertNotEqual(foreign.status, 0)
        XCTAssertTrue(foreign.stderr.contains("backup destination vfs:///nowhere is not allowed on this daemon"),
                      foreign.stderr)
        let names = try engine.dockerOK(["volume", "ls", "-q"])
        XCTAssertFalse(names.contains("nothing") || names.contains("foreign"), names)
    }

    func testContainerReadsALazilyRestoredVolume() throws {
        try engine.dockerOK(["volume", "create", "-d", driver, "--name", "lazy-origin"])
        try engine.dockerOK(["run", "--rm", "--network", "none", "-v", "lazy-origin:/data", "tiny:latest",
                             "sh", "-c", "mkdir /data/app && echo 'lazy state' > /data/app/state "
                                 + "&& head -c 2000000 /dev/urandom > /data/app/blob"])
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "lazy-origin", "--name", "lazy-snap"]).status, 0)
        let backup = try daemon.cli(["backup", "create", "lazy-snap", "--dest", "vfs://\(daemon.directory)/backups"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let url = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        try engine.dockerOK(["volume", "create", "-d", driver, "--name", "lazyvol", "-o", "backup=\(url)",
                             "-o", "lazy=true"])
        let read = try engine.dockerOK(["run", "--rm", "--network", "none", "-v", "lazyvol:/data", "tiny:latest",
                                        "sh", "-c", "cat /data/app/state; md5sum /data/app/blob | cut -c1-32"])
        let original = try engine.dockerOK(["run", "--rm", "--network", "none", "-v", "lazy-origin:/data",
                                            "tiny:latest", "sh", "-c", "md5sum /data/app/blob | cut -c1-32"])
        XCTAssertEqual(read, "lazy state\n" + original)
        let inspect = try engine.dockerOK(["volume", "inspect", "lazyvol", "--format", "{{ .Status.hydration }}"])
        // "<no value>": hydration completed and the volume became a plain directory when the container left.
        XCTAssertTrue(["hydrating", "complete", "<no value>"].contains(inspect), inspect)
        let bad = try engine.docker(["volume", "create", "-d", driver, "--name", "lazy-bad", "-o", "lazy=maybe",
                                     "-o", "backup=\(url)"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("not true or false"), bad.stderr)
    }
}
