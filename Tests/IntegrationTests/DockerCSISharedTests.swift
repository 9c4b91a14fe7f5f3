import CSIProtocol
import Foundation
import GRPCCore
import XCTest

/// One volume used through a real Docker engine and through CSI at once: one table of references, so neither
/// side can remove it while the other uses it, and both see the same bytes.
final class DockerCSISharedTests: XCTestCase {
    var daemon: DaemonHarness!
    var engine: DockerEngine!
    var driver = ""
    let csiSocket = NSTemporaryDirectory() + "convoy-csi-\(UUID().uuidString.prefix(8)).sock"

    override func setUpWithError() throws {
        let setup = try DockerPluginSetup.start(prefix: "cvc", daemonArguments: [
            "--csi-socket", csiSocket, "--host-id", "docker-and-csi"])
        (driver, daemon, engine) = (setup.driver, setup.daemon, setup.engine)
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: csiSocket) && Date() < deadline { usleep(20_000) }
    }

    override func tearDown() {
        _ = try? engine?.docker(["rm", "-f", "c1"])
        engine?.stop()
        daemon?.cleanUp()
    }

    func testNeitherDockerNorCSIRemovesAVolumeTheOtherUses() async throws {
        let target = daemon.directory + "/kubelet/pods/p/volume"
        try await withCSIClient(csiSocket) { client in
            let steps = CSISteps(client)
            try await steps.create("both")
            try await steps.stageAndPublish("both", at: target)
            try Data("written through CSI\n".utf8).write(to: URL(fileURLWithPath: target + "/greeting"))
            XCTAssertEqual(try daemon.references(of: "both"), 1)

            try engine.dockerOK(["volume", "create", "-d", driver, "--name", "both"])
            try engine.dockerOK(["run", "-d", "--name", "c1", "--network", "none", "-v", "both:/data",
                                 "tiny:latest", "sleep", "600"])
            XCTAssertEqual(try engine.dockerOK(["exec", "c1", "cat", "/data/greeting"]), "written through CSI")
            XCTAssertEqual(try daemon.references(of: "both"), 2, "Docker's mount and CSI's stage are not one count")
            let held = await csiStatus { try await steps.delete("both") }
            XCTAssertEqual(held, .failedPrecondition, "CSI deleted a volume a container uses")

            // Docker's reference gone, CSI's kept: Docker's remove reaches the plugin, which refuses it.
            try engine.dockerOK(["rm", "-f", "c1"])
            XCTAssertEqual(try daemon.references(of: "both"), 1)
            let removed = try engine.docker(["volume", "rm", "both"])
            XCTAssertNotEqual(removed.status, 0, "Docker removed a volume CSI has staged")
            XCTAssertEqual(try String(contentsOfFile: target + "/greeting", encoding: .utf8), "written through CSI\n")

            try engine.dockerOK(["run", "-d", "--name", "c1", "--network", "none", "-v", "both:/data",
                                 "tiny:latest", "sleep", "600"])
            try await steps.unpublishAndUnstage("both", at: target)
            XCTAssertEqual(try daemon.references(of: "both"), 1)
            let stillHeld = await csiStatus { try await steps.delete("both") }
            XCTAssertEqual(stillHeld, .failedPrecondition, "CSI deleted a volume a container uses")
            XCTAssertEqual(try engine.dockerOK(["exec", "c1", "cat", "/data/greeting"]), "written through CSI")

            try engine.dockerOK(["rm", "-f", "c1"])
            XCTAssertEqual(try daemon.references(of: "both"), 0)
            try await steps.delete("both")
            XCTAssertFalse(try engine.dockerOK(["volume", "ls", "-q"]).split(separator: "\n").contains("both"),
                           "Docker still lists a volume CSI deleted")
        }
    }
}
