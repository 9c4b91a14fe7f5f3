import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
@testable import Plugin
import XCTest

/// Who a daemon is to the hosts that share its storage (issue 19): the flag, else what an earlier start recorded,
/// else `<hostname>-<12 hex digits of the machine id>`; and what it writes to a store carries that id.
final class HostIdentityTests: XCTestCase {
    let machine = "3F2A9C1D5E6B7A8091A2B3C4D5E6F708"

    func testTheFlagWinsAndSaysWhichIdItReplaced() throws {
        XCTAssertEqual(try HostIdentity.resolve(flag: "node-b", recorded: "node-a", machineID: machine, hostname: "x"),
                       .init(id: "node-b", replaced: "node-a"))
        XCTAssertEqual(try HostIdentity.resolve(flag: "node-a", recorded: "node-a", machineID: machine, hostname: "x"),
                       .init(id: "node-a", replaced: nil))
    }

    func testARecordedIdStaysWhateverTheMachineSays() throws {
        XCTAssertEqual(try HostIdentity.resolve(flag: nil, recorded: "node-a", machineID: machine, hostname: "other"),
                       .init(id: "node-a", replaced: nil))
    }

    func testTheDefaultIsTheHostnameAndTheMachineId() throws {
        XCTAssertEqual(try HostIdentity.resolve(flag: nil, recorded: nil, machineID: machine, hostname: "db1").id,
                       "db1-3f2a9c1d5e6b")
        // What an id may not hold becomes '-'; a hostname of nothing usable leaves the machine id alone.
        XCTAssertEqual(HostIdentity.derived(machineID: machine, hostname: "my_box.example.com"),
                       "my-box-example-com-3f2a9c1d5e6b")
        XCTAssertEqual(HostIdentity.derived(machineID: machine, hostname: "---"), "host-3f2a9c1d5e6b")
        let long = HostIdentity.derived(machineID: machine, hostname: String(repeating: "a", count: 200))
        XCTAssertEqual(long.count, HostIdentity.maximumLength)
        XCTAssertNoThrow(try HostIdentity.validate(long))
    }

    func testWithoutAMachineIdTheDefaultIsRandom() throws {
        let first = HostIdentity.derived(machineID: nil, hostname: "vm")
        let second = HostIdentity.derived(machineID: "", hostname: "vm")
        XCTAssertTrue(first.hasPrefix("vm-") && first.count == 15, first)
        XCTAssertNotEqual(first, second)
    }

    func testIdsAreValidated() {
        for bad in ["", "-lead", ".lead", "has space", "slash/inside", "é", String(repeating: "a", count: 64)] {
            XCTAssertThrowsError(try HostIdentity.validate(bad), bad) { error in
                XCTAssertTrue((error as? ConvoyError)?.message.contains("--host-id") ?? false, "\(error)")
            }
        }
        for good in ["a", "node1", "node-1.dc_2", String(repeating: "a", count: 63)] {
            XCTAssertNoThrow(try HostIdentity.validate(good), good)
        }
    }

    /// The volume record a backup leaves in the store, and the backup's manifest, name the host that wrote them;
    /// `backup inspect` shows it.
    func testABackupRecordsItsHostInTheStore() async throws {
        let fixture = try ServiceFixture(self, hostID: "node-a")
        _ = try await fixture.volumes.create(name: "src", options: [:])
        try TreeFixture.write(try fixture.directory(of: "src") + "/f", Array("data".utf8))
        _ = try await fixture.ended(try await fixture.snapshots.createSnapshot(volume: "src", snapshot: "s1"))
        let destination = "vfs://" + fixture.root + "/store"
        let done = try await fixture.ended(try await fixture.backups.createBackup(snapshot: "s1",
                                                                                  destination: destination))
        let repository = try await fixture.stores.repository(try StoreLocation.parse(destination))
        let record = try await repository.volumeRecord("src")
        XCTAssertEqual(record?.host, "node-a")
        let inspected = try await fixture.backups.inspectBackup(done.result?["URL"] ?? "")
        XCTAssertEqual(inspected.host, "node-a")
    }
}
