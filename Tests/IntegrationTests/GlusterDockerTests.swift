import Foundation
import XCTest

/// A real Docker engine using gluster volumes through the plugin: the container's writes land on the brick, and
/// Docker sees the volumes as global (reachable from every host).
final class GlusterDockerTests: XCTestCase {
    var gluster: GlusterServer!
    var daemon: DaemonHarness!
    var engine: DockerEngine!
    var driver = ""

    override func setUpWithError() throws {
        gluster = try GlusterServer.fromEnvironment()
        let setup = try DockerPluginSetup.start(prefix: "cvg", daemonArguments: gluster.daemonArguments())
        (driver, daemon, engine) = (setup.driver, setup.daemon, setup.engine)
    }

    override func tearDown() {
        engine?.stop()
        daemon?.cleanUp()
    }

    func testAContainerWritesToAGlusterVolume() throws {
        let name = "docker-" + UUID().uuidString.prefix(8).lowercased()
        try engine.dockerOK(["volume", "create", "-d", driver, "--name", name, "-o", "size=16M"])
        XCTAssertEqual(try engine.dockerOK(["volume", "inspect", name, "--format", "{{.Scope}}"]), "global")
        let output = try engine.dockerOK(["run", "--rm", "--network", "none", "-v", "\(name):/data", "tiny:latest",
                                          "sh", "-c", "echo from-a-container > /data/f; df -k /data | tail -n 1"])
        XCTAssertTrue(output.split(separator: " ").contains("16384"), "df in the container shows the quota: \(output)")
        XCTAssertEqual(try String(contentsOfFile: gluster.brick + "/\(name)/f", encoding: .utf8), "from-a-container\n")
        let status = try engine.dockerOK(["volume", "inspect", name, "--format", "{{json .Status}}"])
        XCTAssertTrue(status.contains(#""poolMount":"connected""#) && status.contains(#""pool":"\#(gluster.pool)""#),
                      status)
        XCTAssertEqual(try daemon.references(of: name), 0, "the finished container released its mount")
        try engine.dockerOK(["volume", "rm", name])
        XCTAssertFalse(FileManager.default.fileExists(atPath: gluster.brick + "/" + name))
    }

    /// A container writes to a replica-2 volume while one of its bricks is killed: every write succeeds, and
    /// self-heal later gives the restarted brick what it missed.
    func testAContainerKeepsWritingWhileAReplicaBrickIsKilled() throws {
        let name = "replica-" + UUID().uuidString.prefix(8).lowercased()
        try engine.dockerOK(["volume", "create", "-d", driver, "--name", name, "-o", "pool=\(gluster.replicaPool)"])
        let (survivor, victim) = (gluster.replicaBricks[0], gluster.replicaBricks[1])
        let container = try engine.dockerOK([
            "run", "-d", "--network", "none", "-v", "\(name):/data", "tiny:latest",
            "sh", "-c", GlusterFailoverTests.writerScript.replacingOccurrences(of: "%@", with: "/data")])
        try waitUntil("the container to be writing", timeout: 30) {
            FileManager.default.fileExists(atPath: survivor + "/\(name)/file-5")
        }
        try GlusterServer.kill9AndWait(try XCTUnwrap(GlusterServer.brickPID(of: victim)))
        XCTAssertEqual(try engine.dockerOK(["wait", container]), "0", "every write succeeded with a brick down")
        XCTAssertEqual(try String(contentsOfFile: survivor + "/\(name)/file-60", encoding: .utf8), "line-60\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: victim + "/\(name)/file-60"),
                       "the dead brick missed the late writes")

        try gluster.restartBrickAndWaitForHeal(brick: victim, directory: name, files: GlusterFailoverTests.writtenFiles)
        try engine.dockerOK(["rm", container])
        try engine.dockerOK(["volume", "rm", name])
    }
}
