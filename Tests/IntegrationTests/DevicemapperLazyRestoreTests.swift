import Foundation
import XCTest

/// Lazy restore of block backups (docs/design.md, "Lazy restore") on a real dm-thin pool, in the VM: the
/// backup's image through FUSE on a loop device is the external origin of the new thin volume.
extension DevicemapperDaemonTests {
    /// A 32 MiB volume with data, unmounted, snapshotted and backed up: the backup's URL and the data's checksum.
    func backedUpBlockVolume(_ name: String) throws -> (url: String, dataSum: String) {
        XCTAssertEqual(try daemon.cli(["create", name, "--size", "32M"]).status, 0)
        let path = try mountVolume(name)
        try Command.check("/bin/sh", ["-c", "head -c 6000000 /dev/urandom > '\(path)/data' "
                                    + "&& echo hello > '\(path)/note' && sync"])
        let dataSum = try sha256(path + "/data")
        XCTAssertEqual(try daemon.cli(["umount", name]).status, 0)
        XCTAssertEqual(try daemon.cli(["snapshot", "create", name, "--name", name + "-snap"]).status, 0)
        let url = try backup(name + "-snap")["URL"] ?? ""
        XCTAssertFalse(url.isEmpty)
        return (url, dataSum)
    }

    func mountVolume(_ name: String) throws -> String {
        let mounted = try daemon.cli(["mount", name])
        XCTAssertEqual(mounted.status, 0, mounted.stderr)
        return mounted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func sha256(_ path: String) throws -> String { String(try Command.check("/usr/bin/sha256sum", [path]).prefix(64)) }

    /// True while the volume's thin table names an external origin (`0 <len> thin <pool> <id> <origin>`).
    func hasOrigin(_ volume: String) throws -> Bool {
        try Command.check("/sbin/dmsetup", ["table", "\(pool)-v-\(volume)"]).split(separator: " ").count == 6
    }

    func hydrationState(_ volume: String) throws -> String? {
        let result = try daemon.cli(["hydrate", volume])
        XCTAssertEqual(result.status, 0, result.stderr)
        return (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])?["State"] as? String
    }

    func waitUntil(_ what: String, timeout: TimeInterval = 120, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            usleep(200_000)
        }
        XCTFail("not within \(Int(timeout)) s: \(what)")
    }

    /// Nothing of the volume's backup is attached any more: no origin device, loop device or FUSE mount.
    func assertBackupDetached(_ volume: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let base = daemon.root + "/lazy/" + volume + "/"
        let devices = try Command.check("/sbin/dmsetup", ["ls"])
        XCTAssertFalse(devices.contains("\(pool)-o-\(volume)"), devices + daemon.log_(), file: file, line: line)
        let loops = try Command.check("/sbin/losetup", ["-a"])
        XCTAssertFalse(loops.contains(base), loops, file: file, line: line)
        XCTAssertFalse(daemon.mountsUnderDirectory.contains { $0.hasPrefix(base) }, "\(daemon.mountsUnderDirectory)",
                       file: file, line: line)
    }

    func restartDaemon(hydrationPause: String?) throws {
        XCTAssertEqual(daemon.stop(), 0)
        daemon.extraArguments.removeAll { $0 == "--hydration-pause" || $0 == "0.1" }
        if let hydrationPause { daemon.extraArguments += ["--hydration-pause", hydrationPause] }
        try daemon.start()
    }

    func testALazyBlockRestoreIsUsableAtOnceAndEndsAsAnOrdinaryThinVolume() throws {
        let (url, dataSum) = try backedUpBlockVolume("src")
        let sourceSum = try sha256("/dev/mapper/\(pool)-v-src")
        // Hydration throttled (0.1 s a block, over a hundred blocks): everything below happens before it could end.
        try restartDaemon(hydrationPause: "0.1")
        let began = Date()
        let created = try daemon.cli(["create", "lazy", "--backup", url, "--lazy"])
        XCTAssertEqual(created.status, 0, created.stderr)
        let path = try mountVolume("lazy")
        XCTAssertEqual(try sha256(path + "/data"), dataSum)
        print("lazy block restore: created, mounted and the first file read in \(Date().timeIntervalSince(began)) s")
        XCTAssertEqual(try hydrationState("lazy"), "hydrating")
        XCTAssertTrue(try hasOrigin("lazy"))
        try Command.check("/bin/sh", ["-c", "echo written > '\(path)/new' && sync"])
        let snapshot = try daemon.cli(["snapshot", "create", "lazy"])
        XCTAssertEqual(snapshot.status, 1)
        XCTAssertTrue(snapshot.stderr.contains("restored lazily"), snapshot.stderr)

        // Deleting a lazy volume while it hydrates leaves nothing of it: no device, origin, loop device or mount.
        XCTAssertEqual(try daemon.cli(["create", "dropped", "--backup", url, "--lazy"]).status, 0)
        XCTAssertTrue(try hasOrigin("dropped"))
        let deleted = try daemon.cli(["delete", "dropped"])
        XCTAssertEqual(deleted.status, 0, deleted.stderr)
        XCTAssertFalse(try Command.check("/sbin/dmsetup", ["ls"]).contains("\(pool)-v-dropped"))
        try assertBackupDetached("dropped")

        // A second lazy volume of the backup, never mounted: it finishes as soon as it is hydrated, and its device
        // then equals the source's byte for byte (blocks copied in from the backup, unmapped ones zero).
        XCTAssertEqual(try daemon.cli(["create", "untouched", "--backup", url, "--lazy"]).status, 0)
        for volume in ["lazy", "untouched"] {
            let waited = try daemon.cli(["hydrate", volume, "--wait"])
            XCTAssertEqual(waited.status, 0, waited.stderr)
        }
        try waitUntil("the untouched volume is local") { try hydrationState("untouched") == "local" }
        XCTAssertFalse(try hasOrigin("untouched"))
        try assertBackupDetached("untouched")
        XCTAssertEqual(try sha256("/dev/mapper/\(pool)-v-untouched"), sourceSum)

        // The mounted one keeps its origin until its last unmount, then drops it.
        XCTAssertTrue(try hasOrigin("lazy"), "a mounted volume keeps its origin")
        XCTAssertEqual(try daemon.cli(["umount", "lazy"]).status, 0)
        try waitUntil("the lazy volume is local") { try hydrationState("lazy") == "local" }
        XCTAssertFalse(try hasOrigin("lazy"))
        try assertBackupDetached("lazy")
        let inspect = try daemon.cli(["inspect", "lazy"]).stdout
        XCTAssertFalse(inspect.contains("ExternalOrigin") || inspect.contains("LazyBackup"), inspect)
        let again = try mountVolume("lazy")
        XCTAssertEqual(try sha256(again + "/data"), dataSum)
        XCTAssertEqual(try Command.check("/bin/cat", [again + "/new"]), "written\n")
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "lazy"]).status, 0, "an ordinary volume again")
    }

    func testALazyBlockVolumeInUseSurvivesAKilledDaemonAndFinishes() throws {
        let (url, dataSum) = try backedUpBlockVolume("src")
        try restartDaemon(hydrationPause: "0.1")
        XCTAssertEqual(try daemon.cli(["create", "lazy", "--backup", url, "--lazy"]).status, 0)
        let path = try daemon.pluginOK("VolumeDriver.Mount", ["Name": "lazy", "ID": "c1"])["Mountpoint"]
            as? String ?? ""
        XCTAssertEqual(try sha256(path + "/data"), dataSum)
        XCTAssertEqual(try hydrationState("lazy"), "hydrating")

        daemon.crash()
        daemon.extraArguments.removeAll { $0 == "--hydration-pause" || $0 == "0.1" }
        try daemon.start()
        // The kernel kept the volume mounted; with the page cache dropped, its unwritten blocks are read from the
        // backup again, through the origin the restart attached anew (the dead one's loop device is gone).
        try Command.check("/bin/sh", ["-c", "sync && echo 3 > /proc/sys/vm/drop_caches"])
        XCTAssertEqual(try sha256(path + "/data"), dataSum)
        let loops = try Command.check("/sbin/losetup", ["-a"]).split(separator: "\n")
            .filter { $0.contains(daemon.root + "/lazy/") }
        XCTAssertEqual(loops.count, 1, "\(loops)")

        let waited = try daemon.cli(["hydrate", "lazy", "--wait"])
        XCTAssertEqual(waited.status, 0, waited.stderr)
        try daemon.pluginOK("VolumeDriver.Unmount", ["Name": "lazy", "ID": "c1"])
        try waitUntil("the lazy volume is local") { try hydrationState("lazy") == "local" }
        XCTAssertFalse(try hasOrigin("lazy"))
        try assertBackupDetached("lazy")
        XCTAssertEqual(try sha256(try mountVolume("lazy") + "/data"), dataSum)
    }
}
