import ConvoyTestSupport
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Two daemons as two hosts (own roots, sockets and host ids) on one shared storage: one volume catalog,
/// references per host under leases (issue 19). The checks run on a shared vfs directory (`vfs.shared=true`, as
/// several hosts mount one NFS export) and on a real gluster pool (SharedVFSTests, SharedGlusterTests).
class SharedStorageTestCase: XCTestCase {
    var hostA: DaemonHarness!
    var hostB: DaemonHarness!
    /// Names unique to one test: a gluster pool is shared by the whole run.
    let prefix = "s" + UUID().uuidString.prefix(6).lowercased() + "-"

    /// The daemon flags that put a host on the shared storage, with its id.
    func daemonArguments(host: String) throws -> [String] { [] }
    /// Where the volumes' data and the catalog live, as host A mounts the storage.
    var storageDirectory: String { "" }

    override func setUpWithError() throws {
        hostA = try DaemonHarness()
        hostB = try DaemonHarness()
        for (daemon, id) in [(hostA!, "host-a"), (hostB!, "host-b")] {
            daemon.extraArguments = try daemonArguments(host: id) + ["--host-lease-ttl", "3"]
            try daemon.start()
        }
    }

    override func tearDown() {
        hostA?.cleanUp()
        hostB?.cleanUp()
    }

    func names(_ daemon: DaemonHarness) throws -> [String] {
        let listed = try daemon.pluginOK("VolumeDriver.List", [:])
        return ((listed["Volumes"] as? [[String: Any]]) ?? []).compactMap { $0["Name"] as? String }
            .filter { $0.hasPrefix(prefix) }.sorted()
    }

    func checkAVolumeMadeOnOneHostIsUsedOnTheOther() throws {
        let capabilities = try hostA.pluginOK("VolumeDriver.Capabilities", [:])
        XCTAssertEqual((capabilities["Capabilities"] as? [String: Any])?["Scope"] as? String, "global")
        let db = prefix + "db"
        try hostA.pluginOK("VolumeDriver.Create", ["Name": db])
        XCTAssertEqual(try names(hostB), [db])
        let inspect = try hostB.cli(["inspect", db])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)

        // Bytes written through A's mount are read through B's.
        let onA = try hostA.pluginOK("VolumeDriver.Mount", ["Name": db, "ID": "a1"])["Mountpoint"] as? String
        let onB = try hostB.pluginOK("VolumeDriver.Mount", ["Name": db, "ID": "b1"])["Mountpoint"] as? String
        try TreeFixture.write(try XCTUnwrap(onA) + "/record", Array("written on A".utf8))
        XCTAssertEqual(FileManager.default.contents(atPath: try XCTUnwrap(onB) + "/record"), Data("written on A".utf8))

        // Neither host deletes it while the other mounts it.
        try hostA.pluginOK("VolumeDriver.Unmount", ["Name": db, "ID": "a1"])
        let refused = try hostA.cli(["delete", db])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("in use on host host-b (1 mount(s))"), refused.stderr)
        try hostB.pluginOK("VolumeDriver.Unmount", ["Name": db, "ID": "b1"])
        let deleted = try hostA.cli(["delete", db])
        XCTAssertEqual(deleted.status, 0, deleted.stderr)
        // The other host sees it gone within its client's cache time (a gluster FUSE client keeps names 1 s).
        let seen = Date().addingTimeInterval(5)
        while Date() < seen, try names(hostB) != [] { usleep(100_000) }
        XCTAssertEqual(try names(hostB), [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: storageDirectory + "/" + db))
        XCTAssertTrue(try hostB.pluginErr("VolumeDriver.Get", #"{"Name":"\#(db)"}"#).contains("no volume named"))
    }

    /// A host killed with its volume mounted holds it until its lease expires; then the other host may delete.
    func checkADeadHostsReferencesStopCountingWhenItsLeaseExpires() throws {
        let logs = prefix + "logs"
        try hostA.pluginOK("VolumeDriver.Create", ["Name": logs])
        try hostB.pluginOK("VolumeDriver.Mount", ["Name": logs, "ID": "b1"])
        hostB.crash()
        let refused = try hostA.cli(["delete", logs])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("in use on host host-b"), refused.stderr)
        sleep(4)  // the lease (3 s) runs out
        let deleted = try hostA.cli(["delete", logs])
        XCTAssertEqual(deleted.status, 0, deleted.stderr)
    }

    /// Both hosts create one name at the same moment: exactly one creates it. Asked with other options, the
    /// other is told who did; asked alike, it gets that volume, as Docker's repeated Creates expect.
    func checkConcurrentCreatesOfOneNameHaveOneWinner() throws {
        for round in 0..<10 {
            let name = prefix + "race\(round)"
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
            let record = try creator(of: name)
            XCTAssertTrue(record.contains("\"host\":\"host-a\"") != record.contains("\"host\":\"host-b\""), record)
            XCTAssertEqual(try names(hostA), try names(hostB))
        }
    }

    /// A host killed in the middle of a create, whose name another host then made: its restart removes its own
    /// record and leaves the other host's volume and data alone (it used to delete the directory of that name).
    func checkAnInterruptedCreateLeavesAnotherHostsVolumeAlone() throws {
        let name = prefix + "contested"
        hostA.stop()
        hostA.environment = ["CONVOY_FAILPOINT": "create-recorded"]
        try hostA.start()
        _ = try? hostA.cli(["create", name])
        while hostA.process?.isRunning == true { usleep(50_000) }
        try hostB.pluginOK("VolumeDriver.Create", ["Name": name])
        let onB = try hostB.pluginOK("VolumeDriver.Mount", ["Name": name, "ID": "b1"])["Mountpoint"] as? String
        try TreeFixture.write(try XCTUnwrap(onB) + "/mine", Array("host B's".utf8))
        hostA.environment = [:]
        try hostA.start()
        XCTAssertTrue(hostA.log_().contains("the name is host host-b's now; its data is left alone"), hostA.log_())
        XCTAssertEqual(FileManager.default.contents(atPath: try XCTUnwrap(onB) + "/mine"), Data("host B's".utf8))
        XCTAssertEqual(try names(hostA), try names(hostB))
    }

    /// The catalog's record of `name`, read again while the storage answers ESTALE for a file just replaced.
    func creator(of name: String) throws -> String {
        let path = "\(storageDirectory)/.convoy/volumes/\(name).json"
        for _ in 0..<20 {
            if let record = try? String(contentsOfFile: path, encoding: .utf8) { return record }
            usleep(50_000)
        }
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    /// Two daemons with one host id on one shared storage would count each other's mounts as their own.
    func checkASecondDaemonWithTheSameHostIdIsRefused() throws {
        let twin = try DaemonHarness()
        defer { twin.cleanUp() }
        twin.extraArguments = try daemonArguments(host: "host-a")
        XCTAssertThrowsError(try twin.start(timeout: 10)) { error in
            XCTAssertTrue("\(error)".contains("another daemon uses host id host-a"), "\(error)")
        }
    }
}

/// The checks on a directory every host mounts (here one directory; NFS in production).
final class SharedVFSTests: SharedStorageTestCase {
    var shared = ""

    override func daemonArguments(host: String) throws -> [String] {
        if shared.isEmpty { shared = try TreeFixture.temporaryDirectory("shared-vfs") }
        return ["--drivers", "vfs", "--driver-opts", "vfs.path=\(shared)", "--driver-opts", "vfs.shared=true",
                "--host-id", host]
    }

    override var storageDirectory: String { shared }

    override func tearDown() {
        super.tearDown()
        try? FileManager.default.removeItem(atPath: shared)
    }

    func testAVolumeMadeOnOneHostIsUsedOnTheOther() throws { try checkAVolumeMadeOnOneHostIsUsedOnTheOther() }
    func testADeadHostsReferencesStopCountingWhenItsLeaseExpires() throws {
        try checkADeadHostsReferencesStopCountingWhenItsLeaseExpires()
    }
    func testConcurrentCreatesOfOneNameHaveOneWinner() throws { try checkConcurrentCreatesOfOneNameHaveOneWinner() }
    func testASecondDaemonWithTheSameHostIdIsRefused() throws { try checkASecondDaemonWithTheSameHostIdIsRefused() }
    func testAnInterruptedCreateLeavesAnotherHostsVolumeAlone() throws {
        try checkAnInterruptedCreateLeavesAnotherHostsVolumeAlone()
    }
}

/// The checks on a real NFS export that the two hosts mount separately, each mount with its own client cache
/// (attributes, names, ESTALE after another client replaced a file): scripts/vm-nfs serves it in the VM, where the
/// kernel has NFS, and names the two mounts in `CONVOY_TEST_NFS_MOUNTS`.
final class SharedNFSTests: SharedStorageTestCase {
    var directories: [String] = []

    override func setUpWithError() throws {
        let environment = ProcessInfo.processInfo.environment
        let mounts = (environment["CONVOY_TEST_NFS_MOUNTS"] ?? "").split(separator: ",").map(String.init)
        guard mounts.count == 2 else {
            if environment["CONVOY_REQUIRE_NFS"] == "1" {
                throw HarnessError("CONVOY_REQUIRE_NFS=1 but CONVOY_TEST_NFS_MOUNTS names no two mounts")
            }
            throw XCTSkip("no NFS here: scripts/test runs these tests in the VM (scripts/vm-nfs)")
        }
        // One directory of the export per test, made through A's mount, reached by B through its own.
        let name = "t-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: mounts[0] + "/" + name, withIntermediateDirectories: false)
        directories = mounts.map { $0 + "/" + name }
        try super.setUpWithError()
    }

    override func daemonArguments(host: String) throws -> [String] {
        ["--drivers", "vfs", "--driver-opts", "vfs.path=\(host == "host-b" ? directories[1] : directories[0])",
         "--driver-opts", "vfs.shared=true", "--host-id", host]
    }

    override var storageDirectory: String { directories[0] }

    override func tearDown() {
        super.tearDown()
        if let directory = directories.first { try? FileManager.default.removeItem(atPath: directory) }
    }

    func testAVolumeMadeOnOneHostIsUsedOnTheOther() throws { try checkAVolumeMadeOnOneHostIsUsedOnTheOther() }
    func testADeadHostsReferencesStopCountingWhenItsLeaseExpires() throws {
        try checkADeadHostsReferencesStopCountingWhenItsLeaseExpires()
    }
    func testConcurrentCreatesOfOneNameHaveOneWinner() throws { try checkConcurrentCreatesOfOneNameHaveOneWinner() }
    func testASecondDaemonWithTheSameHostIdIsRefused() throws { try checkASecondDaemonWithTheSameHostIdIsRefused() }
    func testAnInterruptedCreateLeavesAnotherHostsVolumeAlone() throws {
        try checkAnInterruptedCreateLeavesAnotherHostsVolumeAlone()
    }
}

/// The checks on a real gluster pool, which each daemon mounts with the FUSE client (scripts/gluster-server).
final class SharedGlusterTests: SharedStorageTestCase {
    var gluster: GlusterServer!

    override func daemonArguments(host: String) throws -> [String] {
        if gluster == nil { gluster = try GlusterServer.fromEnvironment() }
        return gluster.daemonArguments() + ["--host-id", host]
    }

    override var storageDirectory: String { hostA.root + "/glusterfs/mounts/" + gluster.pool }

    func testAVolumeMadeOnOneHostIsUsedOnTheOther() throws { try checkAVolumeMadeOnOneHostIsUsedOnTheOther() }
    func testADeadHostsReferencesStopCountingWhenItsLeaseExpires() throws {
        try checkADeadHostsReferencesStopCountingWhenItsLeaseExpires()
    }
    func testConcurrentCreatesOfOneNameHaveOneWinner() throws { try checkConcurrentCreatesOfOneNameHaveOneWinner() }
    func testASecondDaemonWithTheSameHostIdIsRefused() throws { try checkASecondDaemonWithTheSameHostIdIsRefused() }
    func testAnInterruptedCreateLeavesAnotherHostsVolumeAlone() throws {
        try checkAnInterruptedCreateLeavesAnotherHostsVolumeAlone()
    }
}
