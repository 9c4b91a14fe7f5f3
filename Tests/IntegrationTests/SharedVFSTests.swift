import ConvoyTestSupport
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Two daemons as two hosts (own roots, sockets and host ids) on one shared vfs directory (`vfs.shared=true`,
/// the way several hosts mount one NFS export): one volume catalog, references per host under leases (issue 19).
final class SharedVFSTests: XCTestCase {
    var shared = ""
    var hostA: DaemonHarness!
    var hostB: DaemonHarness!

    override func setUpWithError() throws {
        shared = try TreeFixture.temporaryDirectory("shared-vfs")
        hostA = try DaemonHarness()
        hostB = try DaemonHarness()
        for (daemon, id) in [(hostA!, "host-a"), (hostB!, "host-b")] {
            daemon.extraArguments = ["--drivers", "vfs", "--driver-opts", "vfs.path=\(shared)",
                                     "--driver-opts", "vfs.shared=true", "--host-id", id, "--host-lease-ttl", "3"]
            try daemon.start()
        }
    }

    override func tearDown() {
        hostA.cleanUp()
        hostB.cleanUp()
        try? FileManager.default.removeItem(atPath: shared)
    }

    func names(_ daemon: DaemonHarness) throws -> [String] {
        let listed = try daemon.pluginOK("VolumeDriver.List", [:])
        return ((listed["Volumes"] as? [[String: Any]]) ?? []).compactMap { $0["Name"] as? String }.sorted()
    }

    func testAVolumeMadeOnOneHostIsUsedOnTheOther() throws {
        let capabilities = try hostA.pluginOK("VolumeDriver.Capabilities", [:])
        XCTAssertEqual((capabilities["Capabilities"] as? [String: Any])?["Scope"] as? String, "global")
        try hostA.pluginOK("VolumeDriver.Create", ["Name": "db"])
        XCTAssertEqual(try names(hostB), ["db"])
        let inspect = try hostB.cli(["inspect", "db"])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)

        // Bytes written through A's mount are read through B's.
        let onA = try hostA.pluginOK("VolumeDriver.Mount", ["Name": "db", "ID": "a1"])["Mountpoint"] as? String
        let onB = try hostB.pluginOK("VolumeDriver.Mount", ["Name": "db", "ID": "b1"])["Mountpoint"] as? String
        try TreeFixture.write(try XCTUnwrap(onA) + "/record", Array("written on A".utf8))
        XCTAssertEqual(FileManager.default.contents(atPath: try XCTUnwrap(onB) + "/record"), Data("written on A".utf8))

        // Neither host deletes it while the other mounts it.
        try hostA.pluginOK("VolumeDriver.Unmount", ["Name": "db", "ID": "a1"])
        let refused = try hostA.cli(["delete", "db"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("in use on host host-b (1 mount(s))"), refused.stderr)
        try hostB.pluginOK("VolumeDriver.Unmount", ["Name": "db", "ID": "b1"])
        let deleted = try hostA.cli(["delete", "db"])
        XCTAssertEqual(deleted.status, 0, deleted.stderr)
        XCTAssertEqual(try names(hostB), [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: shared + "/db"))
        XCTAssertTrue(try hostB.pluginErr("VolumeDriver.Get", #"{"Name":"db"}"#).contains("no volume named"))
    }

    /// A host killed with its volume mounted holds it until its lease expires; then the other host may delete.
    func testADeadHostsReferencesStopCountingWhenItsLeaseExpires() throws {
        try hostA.pluginOK("VolumeDriver.Create", ["Name": "logs"])
        try hostB.pluginOK("VolumeDriver.Mount", ["Name": "logs", "ID": "b1"])
        hostB.crash()
        let refused = try hostA.cli(["delete", "logs"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("in use on host host-b"), refused.stderr)
        sleep(4)  // the lease (3 s) runs out
        let deleted = try hostA.cli(["delete", "logs"])
        XCTAssertEqual(deleted.status, 0, deleted.stderr)
    }

    /// Both hosts create one name at the same moment: exactly one creates it. Asked with other options, the
    /// other is told who did; asked alike, it gets that volume, as Docker's repeated Creates expect.
    func testConcurrentCreatesOfOneNameHaveOneWinner() throws {
        for round in 0..<10 {
            let name = "race\(round)"
            let alike = round % 2 == 0
            let results = try [(hostA!, "1G"), (hostB!, alike ? "1G" : "2G")].map { daemon, size in
                let process = Process()
                process.executableURL = URL(fileURLWithPath: DaemonHarness.binary)
                process.arguments = ["create", name, "--size", size, "--socket", daemon.socket]
                let errors = Pipe()
                process.standardError = errors
                process.standardOutput = FileHandle.nullDevice
                try process.run()
                return (process, errors)
            }
            var failures: [String] = []
            for (process, errors) in results {
                process.waitUntilExit()
                if process.terminationStatus != 0 {
                    failures.append(String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
                }
            }
            XCTAssertEqual(failures.count, alike ? 0 : 1, "round \(round): \(failures)")
            for failure in failures {
                XCTAssertTrue(failure.contains("created on host host-") && failure.contains("other options"), failure)
            }
            let record = try String(contentsOfFile: "\(shared)/.convoy/volumes/\(name).json", encoding: .utf8)
            XCTAssertTrue(record.contains("\"host\":\"host-a\"") != record.contains("\"host\":\"host-b\""), record)
            XCTAssertEqual(try names(hostA), try names(hostB))
        }
    }

    /// Two daemons with one host id on one shared storage would count each other's mounts as their own.
    func testASecondDaemonWithTheSameHostIdIsRefused() throws {
        let twin = try DaemonHarness()
        defer { twin.cleanUp() }
        twin.extraArguments = ["--drivers", "vfs", "--driver-opts", "vfs.path=\(shared)", "--driver-opts",
                               "vfs.shared=true", "--host-id", "host-a"]
        XCTAssertThrowsError(try twin.start(timeout: 10)) { error in
            XCTAssertTrue("\(error)".contains("another daemon uses host id host-a"), "\(error)")
        }
    }
}
