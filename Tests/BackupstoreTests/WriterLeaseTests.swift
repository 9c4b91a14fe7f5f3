@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Writers of one store are told apart by machine, boot, pid namespace, pid and start time: a lease or a
/// temporary file of another machine (a cloned VM, a container) with the same hostname and a pid that is free
/// here is not a dead writer's. A held lease is renewed on a timer, and a collector that finds its lease taken
/// over, or another writer arrived, stops before deleting.
final class WriterLeaseTests: XCTestCase {
    var directory = ""
    var repository: BackupRepository!

    override func setUp() async throws {
        directory = try TreeFixture.temporaryDirectory("leases")
        repository = BackupRepository(store: try FileObjectStore(root: directory))
        try await repository.prepare()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// What a daemon writes to a store names its host (issue 19): its leases, and the volume records.
    func testLeasesAndVolumeRecordsCarryTheHostId() async throws {
        let asHost = BackupRepository(store: repository.store, hostID: "node-a")
        let lease = try await StoreLease.write(.backup, in: asHost)
        let raw = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + StoreLease.key(lease.id)))
        let fields = try XCTUnwrap(try JSONSerialization.jsonObject(with: raw) as? [String: Any])
        XCTAssertEqual(fields["hostID"] as? String, "node-a", "\(fields)")
        await lease.release()
        try await asHost.putVolumeRecord(VolumeRecordInStore(name: "vol", size: 0, lastBackup: nil, updatedAt: "now"))
        let record = try await repository.volumeRecord("vol")
        XCTAssertEqual(record?.host, "node-a")
    }

    /// A pid free in this namespace, as a dead writer's would be.
    private var freePid: Int32 {
        var pid: Int32 = 4_000_000
        while kill(pid, 0) == 0 || errno != ESRCH { pid -= 1 }
        return pid
    }

    private func writeLease(_ id: String, writer: WriterIdentity?) async throws {
        let me = WriterIdentity.current
        let record = StoreLease.Record(id: id, kind: .backup, host: me.host, pid: writer?.pid ?? freePid,
                                       expiresAt: Date().timeIntervalSince1970 + 600, writer: writer)
        try await repository.store.put(StoreLease.key(id), Array(try JSONEncoder().encode(record)))
    }

    func testOnlyAWriterOfThisMachineBootAndNamespaceIsJudgedDead() {
        let me = WriterIdentity.current
        XCTAssertFalse(me.machine.isEmpty)
        XCTAssertFalse(me.isCertainlyDead, "this process runs")
        var gone = me
        gone.pid = freePid
        XCTAssertTrue(gone.isCertainlyDead)
        var reused = me
        reused.started += 1
        XCTAssertTrue(reused.isCertainlyDead, "the pid now belongs to a process started later")
        for change in [\WriterIdentity.machine, \.boot, \.pidNamespace] {
            var elsewhere = gone
            elsewhere[keyPath: change] = "0123456789abcdef0123456789abcdef"
            XCTAssertFalse(elsewhere.isCertainlyDead, "another machine, boot or namespace: only expiry tells")
        }
        XCTAssertEqual(WriterIdentity.parse(tag: me.tag)?.pid, me.pid)
        XCTAssertTrue(WriterIdentity.tagIsCertainlyDead(gone.tag))
        XCTAssertFalse(WriterIdentity.tagIsCertainlyDead(me.tag))
        XCTAssertFalse(WriterIdentity.tagIsCertainlyDead("somehost_\(freePid)"), "an older form: age decides")
        // Without /etc/machine-id (minimal VMs, containers) the boot id still tells this kernel's writers apart.
        var bare = gone
        bare.machine = ""
        XCTAssertEqual(WriterIdentity.parse(tag: bare.tag)?.pid, bare.pid)
        XCTAssertFalse(bare.isCertainlyDead, "the machine id differs from this one's")
        var noBoot = gone
        noBoot.boot = ""
        XCTAssertFalse(noBoot.isCertainlyDead, "without a boot id nothing tells")
    }

    /// The old rule (same hostname, pid not running here) took these two for dead and deleted live leases.
    func testAnotherMachinesLeaseWithOurHostnameStaysLive() async throws {
        var twin = WriterIdentity.current
        twin.machine = "ffffffffffffffffffffffffffffffff"
        twin.pid = freePid
        try await writeLease("backup-twin", writer: twin)
        try await writeLease("backup-older-convoy", writer: nil)
        var crashed = WriterIdentity.current
        crashed.pid = freePid
        try await writeLease("backup-crashed", writer: crashed)

        let gc = try await StoreLease.write(.gc, in: repository)
        let live = try await gc.others().map(\.id).sorted()
        XCTAssertEqual(live, ["backup-older-convoy", "backup-twin"], "only the crashed local writer's lease goes")
        let result = try await GarbageCollector(repository: repository).collect()
        XCTAssertNotNil(result.deferredBecause)
        await gc.release()
    }

    func testAnotherMachinesTemporaryFileWithOurHostnameIsKeptUntilOld() async throws {
        let blocks = directory + "/convoy-backupstore/blocks/ab"
        try FileManager.default.createDirectory(atPath: blocks, withIntermediateDirectories: true)
        var twin = WriterIdentity.current
        twin.machine = "eeeeeeeeeeeeeeeeeeeeeeee"
        twin.pid = freePid
        var crashed = WriterIdentity.current
        crashed.pid = freePid
        let host = WriterIdentity.current.host.filter { $0.isLetter || $0.isNumber || $0 == "." }
        let names = ["abcd.tmp-\(twin.tag)-1f", "abce.tmp-\(host)_\(freePid)-2f", "abcf.tmp-\(crashed.tag)-3f"]
        for name in names { try TreeFixture.write(blocks + "/" + name, [1]) }
        let removed = try await repository.store.removeAbandonedWrites(under: "convoy-backupstore/",
                                                                        olderThan: 3600)
        XCTAssertEqual(removed, 1)
        XCTAssertTrue(FileManager.default.fileExists(atPath: blocks + "/" + names[0]), "another machine's write")
        XCTAssertTrue(FileManager.default.fileExists(atPath: blocks + "/" + names[1]), "an older convoy's write")
        XCTAssertFalse(FileManager.default.fileExists(atPath: blocks + "/" + names[2]), "a crashed local writer's")
    }

    func testAHeldLeaseIsRenewedOnATimer() async throws {
        func expiry(_ id: String) async throws -> Double {
            let bytes = try await repository.store.get(StoreLease.key(id))
            return try JSONDecoder().decode(StoreLease.Record.self, from: Data(bytes)).expiresAt
        }
        try await StoreLease.holding(.gc, in: repository, renewEvery: 0.2) { lease throws(ConvoyError) in
            let first = (try? await expiry(lease.id)) ?? 0
            try? await Task.sleep(for: .seconds(0.7))
            let later = (try? await expiry(lease.id)) ?? 0
            XCTAssertGreaterThan(later, first + 0.3, "renewed while the holder was busy")
        }
    }

    func testACollectorStopsWhenItsLeaseWasTakenOverOrAnotherWriterArrived() async throws {
        try await StoreLease.holding(.gc, in: repository) { lease throws(ConvoyError) in
            let sole = try await lease.reasonToStop()
            XCTAssertNil(sole)
            try? await writeLease("backup-arrived", writer: WriterIdentity.current)
            let arrived = try await lease.reasonToStop()
            XCTAssertTrue(arrived?.contains("backup-arrived") ?? false, "a backup took a lease: \(arrived ?? "go on")")
            try await repository.store.delete([StoreLease.key("backup-arrived"), lease.key])
            let gone = try await lease.reasonToStop()
            XCTAssertTrue(gone?.contains("gone or expired") ?? false, "the lease is gone: \(gone ?? "go on")")
        }
    }
}
