import AWS
import Foundation
import XCTest

/// A real Docker engine using the ebs driver: a container writes to an EBS volume, another reads it back after the
/// first one's unmount; removing the volume deletes the EBS volume.
final class EBSDockerTests: EBSDaemonTestCase {
    var engine: DockerEngine!
    /// The socket's file name is the driver name Docker uses; unique, so a real convoy is left undisturbed.
    let driver = "cvt" + String(UUID().uuidString.prefix(8)).lowercased()
    override var pluginSocket: String? { "/run/docker/plugins/\(driver).sock" }
    override var volumeSuffixes: [String] { ["d"] }

    override func setUp() async throws {
        if let reason = DockerEngine.skipReason { throw XCTSkip(reason) }
        try await super.setUp()
        engine = try DockerEngine()
        try engine.start()
    }

    override func tearDown() async throws {
        engine?.stop()
        try await super.tearDown()
    }

    func testContainersWriteAndReadAnEBSVolume() async throws {
        let name = prefix + "d"
        try engine.dockerOK(["volume", "create", "-d", driver, "--name", name, "-o", "size=1G", "-o", "type=gp2"])
        let found = try await ebs.volumes(named: name)
        let volume = try XCTUnwrap(found.first, "an EBS volume was created")
        XCTAssertEqual(volume.volumeType, "gp2")
        try engine.dockerOK(["run", "--rm", "--network", "none", "-v", "\(name):/data", "tiny:latest",
                             "sh", "-c", "echo from-container > /data/note"])
        XCTAssertEqual(try daemon.references(of: name), 0, "the container's exit unmounted it")
        XCTAssertFalse(daemon.mountsUnderDirectory.contains(daemon.root + "/ebs/mounts/" + name))
        let read = try engine.dockerOK(["run", "--rm", "--network", "none", "-v", "\(name):/data", "tiny:latest",
                                        "cat", "/data/note"])
        XCTAssertEqual(read.trimmingCharacters(in: .whitespacesAndNewlines), "from-container")
        try engine.dockerOK(["volume", "rm", name])
        let gone = try await ebs.ec2.volume(volume.id)
        XCTAssertNil(gone, "docker volume rm deleted the EBS volume")
    }
}
