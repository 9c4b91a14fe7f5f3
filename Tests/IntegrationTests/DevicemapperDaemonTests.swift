import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The daemon with the devicemapper driver, through the CLI and Docker's API, on a real dm-thin pool. Runs in the
/// VM of `scripts/test` (CONVOY_REQUIRE_DM=1); skipped on a kernel without device-mapper.
final class DevicemapperDaemonTests: XCTestCase {
    var daemon: DaemonHarness!
    var pool = ""

    override func setUpWithError() throws {
        try Self.requireDeviceMapper()
        daemon = try DaemonHarness()
        pool = "cvd-" + String(UUID().uuidString.prefix(8)).lowercased()
        daemon.extraArguments = ["--drivers", "devicemapper", "--driver-opts", "dm.thinpoolname=\(pool)",
                                 "--driver-opts", "dm.defaultvolumesize=64M",
                                 "--driver-opts", "dm.thinpoolblocksize=64K",
                                 // Browse targets under /tmp; the Convoy 0.5 store another program wrote, and
                                 // the destination of the tests' own backups (with a list, only those listed).
                                 "--browse-root", daemon.directory,
                                 "--backup-destinations",
                                 "vfs://\(daemon.directory)/legacy,vfs://\(daemon.directory)/b"]
        try daemon.start()
    }

    override func tearDown() {
        guard let daemon else { return }
        Self.removeHost(daemon, pool: pool)
    }

    /// Skips without device-mapper (loading dm-thin-pool first), unless CONVOY_REQUIRE_DM=1 makes that a failure.
    static func requireDeviceMapper() throws {
        if access("/dev/mapper/control", F_OK) != 0 { _ = try? Command.run("/sbin/modprobe", ["dm-thin-pool"]) }
        guard access("/dev/mapper/control", F_OK) == 0 else {
            if ProcessInfo.processInfo.environment["CONVOY_REQUIRE_DM"] == "1" {
                throw HarnessError("CONVOY_REQUIRE_DM=1 but this kernel has no device-mapper")
            }
            throw XCTSkip("no device-mapper in this kernel; scripts/test runs these tests in a VM")
        }
    }

    /// Kills a daemon and removes what it left in the kernel: loop devices over its files, mounts under its
    /// directory, its pool's devices and the pool.
    static func removeHost(_ daemon: DaemonHarness, pool: String) {
        daemon.crash()
        _ = try? Command.run("/bin/sh", ["-c", """
            # Loop devices first, while their files' paths still read as they were (a busy one goes when released).
            for l in $(losetup -l -n -O NAME,BACK-FILE | awk '$2 ~ "^\(daemon.root)/" {print $1}'); do \
            losetup -d "$l"; done
            for m in $(awk '$5 ~ "^\(daemon.directory)/" {print $5}' /proc/self/mountinfo | sort -r); do \
            umount -l "$m"; done
            for d in $(dmsetup ls | awk '$1 ~ "^\(pool)-" {print $1}' | sort -r); do dmsetup remove --force "$d"; done
            dmsetup remove --force \(pool)
            """])
        daemon.cleanUp()
    }

    func testVolumesAndSnapshotsThroughTheDaemonSurviveARestart() throws {
        let created = try daemon.cli(["create", "db", "--size", "32M"])
        XCTAssertEqual(created.status, 0, created.stderr)
        XCTAssertTrue(created.stdout.contains("\"DeviceID\""), created.stdout)
        let mounted = try daemon.pluginOK("VolumeDriver.Mount", ["Name": "db", "ID": "c1"])
        let path = mounted["Mountpoint"] as? String ?? ""
        XCTAssertEqual(path, daemon.root + "/devicemapper/mounts/db")
        XCTAssertTrue(daemon.mountsUnderDirectory.contains(path), "a real mount of the thin device")
        try Command.check("/bin/sh", ["-c", "echo v1 > '\(path)/state' && sync"])

        let snapshot = try daemon.cli(["snapshot", "create", "db", "--name", "db-snap"])
        XCTAssertEqual(snapshot.status, 0, snapshot.stderr)
        let inspected = try daemon.cli(["snapshot", "inspect", "db-snap"])
        XCTAssertTrue(inspected.stdout.contains("\"OriginDeviceID\""), inspected.stdout)

        // Removing is refused while mounted; the restart keeps the mount and the reference.
        XCTAssertTrue(try daemon.pluginErr("VolumeDriver.Remove", "{\"Name\": \"db\"}").contains("in use"))
        XCTAssertEqual(daemon.stop(), 0)
        try daemon.start()
        XCTAssertEqual(try daemon.references(of: "db"), 1)
        XCTAssertEqual(try Command.check("/bin/cat", [path + "/state"]), "v1\n")
        try daemon.pluginOK("VolumeDriver.Unmount", ["Name": "db", "ID": "c1"])
        XCTAssertFalse(daemon.mountsUnderDirectory.contains(path), "the last unmount unmounts")

        XCTAssertEqual(try daemon.cli(["snapshot", "delete", "db-snap"]).status, 0)
        XCTAssertEqual(try daemon.cli(["delete", "db"]).status, 0)
        let left = try Command.check("/sbin/dmsetup", ["ls"])
        XCTAssertFalse(left.contains("\(pool)-v-db") || left.contains("\(pool)-s-"), left)
        let bad = try daemon.cli(["create", "bad", "--opt", "fs=btrfs"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("'btrfs' is not one of"), bad.stderr)
    }

    /// The result of a backup job, from the CLI's `--json` progress lines (the last one holds the result).
    func backup(_ snapshot: String) throws -> [String: String] {
        let run = try daemon.cli(["backup", "create", snapshot, "--dest", "vfs://\(daemon.directory)/b", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let last = run.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let job = try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any]
        return job?["Result"] as? [String: String] ?? [:]
    }

    func testBlockBackupsAreIncrementalFromThinDeltaAndRestoreByteForByte() throws {
        // 64 KiB pool blocks; a 32 MiB volume with a filesystem and some data.
        XCTAssertEqual(try daemon.cli(["create", "blk", "--size", "32M"]).status, 0)
        let path = try daemon.cli(["mount", "blk"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try Command.check("/bin/sh", ["-c", "head -c 4000000 /dev/urandom > '\(path)/data' && sync"])
        let dataSum = String(try Command.check("/usr/bin/sha256sum", [path + "/data"]).prefix(64))
        try Command.check("/bin/umount", [path])  // write below the filesystem next: nothing else may touch the device
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "blk", "--name", "blk-1"]).status, 0)
        let full = try backup("blk-1")
        XCTAssertEqual(full["Incremental"], "false")
        XCTAssertGreaterThan(Int(full["BlocksRead"] ?? "") ?? 0, 60, "a full backup reads every mapped block: \(full)")

        // Exactly 5 pool blocks written (aligned, past the data): the next backup reads and stores those 5 only.
        let device = "/dev/mapper/\(pool)-v-blk"
        try Command.check("/bin/sh", ["-c", "head -c 327680 /dev/urandom "
                                    + "| dd of=\(device) bs=64K seek=400 conv=notrunc,fsync status=none"])
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "blk", "--name", "blk-2"]).status, 0)
        let second = try backup("blk-2")
        XCTAssertEqual(second["Incremental"], "true", "\(second)")
        XCTAssertEqual(second["BlocksRead"], "5", "\(second)")
        XCTAssertEqual(second["NewBlocks"], "5", "\(second)")
        let url = second["URL"] ?? ""
        XCTAssertEqual(try daemon.cli(["backup", "verify", url]).status, 0)

        // Browsing a block backup: its image through FUSE, its filesystem loop-mounted read-only at the target.
        let browse = daemon.directory + "/browse"
        try FileManager.default.createDirectory(atPath: browse, withIntermediateDirectories: true)
        let mounted = try daemon.cli(["backup", "mount", url, browse])
        XCTAssertEqual(mounted.status, 0, mounted.stderr)
        XCTAssertTrue(mounted.stdout.contains("\"LoopDevice\""), mounted.stdout)
        // Its type named (never probed by the kernel), and nothing on it a device, a setuid program or runnable.
        let facts = try mountFacts(browse)
        XCTAssertEqual(facts.type, "ext4")
        XCTAssertTrue(facts.options.isSuperset(of: ["ro", "nosuid", "nodev", "noexec"]), "\(facts.options)")
        XCTAssertEqual(String(try Command.check("/usr/bin/sha256sum", [browse + "/data"]).prefix(64)), dataSum)
        XCTAssertEqual(try daemon.cli(["backup", "umount", browse]).status, 0)
        XCTAssertFalse(daemon.mountsUnderDirectory.contains(browse))
        XCTAssertFalse(try Command.check("/sbin/losetup", ["-a"]).contains(daemon.root + "/browse/"),
                       "the loop device is detached")

        // The restore equals the device as it was at the second snapshot (nothing changed it since).
        let restored = try daemon.cli(["create", "blk-copy", "--backup", url])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        let sum = { (device: String) throws -> String in
            String(try Command.check("/usr/bin/sha256sum", [device]).prefix(64))
        }
        XCTAssertEqual(try sum("/dev/mapper/\(pool)-v-blk-copy"), try sum(device))
        // And it mounts with the data.
        let copy = try daemon.cli(["mount", "blk-copy"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(String(try Command.check("/usr/bin/sha256sum", [copy + "/data"]).prefix(64)), dataSum)
    }

    func testAConvoy05BlockBackupRestoresOntoAThinVolume() throws {
        // A Convoy 0.5 store as Convoy wrote it: 2 MiB gzip blocks named by SHA-512 prefix, a backup_<id>.cfg list.
        let store = daemon.directory + "/legacy"
        let image = daemon.directory + "/legacy.img"
        try Command.check("/usr/bin/python3", ["-c", """
            import gzip, hashlib, json, os, random, sys
            store, image = sys.argv[1], sys.argv[2]
            rng = random.Random(5); size = 16 << 20; block = 2 << 20
            data = bytearray(size)
            data[0:2 * block] = rng.randbytes(2 * block)
            data[3 * block:4 * block] = (b"convoy 0.5 text " * (block // 16))
            open(image, "wb").write(data)
            vol = os.path.join(store, "convoy-objectstore/volumes/ol/d-/old-vol")
            os.makedirs(os.path.join(vol, "backups"))
            json.dump({"Name": "old-vol", "Driver": "devicemapper", "Size": size}, \
            open(os.path.join(vol, "volume.cfg"), "w"))
            blocks = []
            for index in (0, 1, 3):
                content = bytes(data[index * block:(index + 1) * block])
                name = hashlib.sha512(content).hexdigest()[:64]
                path = os.path.join(store, "convoy-objectstore/blocks", name[:2], name[2:4])
                os.makedirs(path, exist_ok=True)
                open(os.path.join(path, name + ".blk"), "wb").write(gzip.compress(content))
                blocks.append({"Offset": index * block, "BlockChecksum": name})
            json.dump({"Name": "backup-00aa11bb22cc33dd", "VolumeName": "old-vol", "SnapshotName": "snap", \
            "Blocks": blocks},
                      open(os.path.join(vol, "backups", "backup_backup-00aa11bb22cc33dd.cfg"), "w"))
            """, store, image])
        let url = "vfs://\(store)?backup=backup-00aa11bb22cc33dd&volume=old-vol"
        let restored = try daemon.cli(["create", "old-copy", "--backup", url])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        XCTAssertTrue(restored.stdout.contains("\"Size\" : 16777216"), restored.stdout)
        let sum = { (path: String) throws -> String in
            String(try Command.check("/usr/bin/sha256sum", [path]).prefix(64))
        }
        XCTAssertEqual(try sum("/dev/mapper/\(pool)-v-old-copy"), try sum(image))

        // A damaged block is refused, naming it, and leaves no volume behind.
        try Command.check("/bin/sh", ["-c", "f=$(find '\(store)/convoy-objectstore/blocks' -name '*.blk' | head -1); "
                                    + "echo garbage | gzip > \"$f\""])
        let refused = try daemon.cli(["create", "old-bad", "--backup", url])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("Convoy block"), refused.stderr)
        XCTAssertEqual(try daemon.cli(["inspect", "old-bad"]).status, 1)
    }

    func testABlockBackupKilledMidwayCanBeRedoneAndTheStoreStaysClean() throws {
        XCTAssertEqual(try daemon.cli(["create", "big", "--size", "320M"]).status, 0)
        let path = try daemon.cli(["mount", "big"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try Command.check("/bin/sh", ["-c", "head -c 60000000 /dev/urandom > '\(path)/data' && sync"])
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "big", "--name", "big-1"]).status, 0)
        let destination = "vfs://\(daemon.directory)/b"
        let began = Date()
        let first = try daemon.cli(["backup", "create", "big-1", "--dest", destination])
        XCTAssertEqual(first.status, 0, first.stderr)
        print("first block backup (60 MB of data): \(Date().timeIntervalSince(began)) s")
        // Now a second backup of a new snapshot, killed while it runs.
        try Command.check("/bin/sh", ["-c", "head -c 150000000 /dev/urandom > '\(path)/more' && sync"])
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "big", "--name", "big-2"]).status, 0)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: DaemonHarness.binary)
        process.arguments = ["backup", "create", "big-2", "--dest", destination, "--socket", daemon.socket]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Killed once the backup is under way (under emulation the CLI may take a while to reach the daemon).
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, !(try daemon.cli(["job", "list"]).stdout.contains("running")) { usleep(100_000) }
        usleep(500_000)
        daemon.crash()
        process.waitUntilExit()

        try daemon.start()
        let jobs = try daemon.cli(["job", "list"]).stdout
        XCTAssertTrue(jobs.contains("interrupted"), "the backup was cut short by the kill: \(jobs)")
        let listed = try daemon.cli(["backup", "list", destination]).stdout
        XCTAssertEqual(listed.components(separatedBy: "BackupURL").count - 1, 1,
                       "only the first backup exists: \(listed)")
        // Redo it: it completes and verifies, and so does the first.
        let redone = try daemon.cli(["backup", "create", "big-2", "--dest", destination])
        XCTAssertEqual(redone.status, 0, redone.stderr)
        for url in try daemon.cli(["backup", "list", destination, "--format", "table"]).stdout
            .split(separator: "\n").compactMap({ $0.split(separator: " ").first(where: { $0.hasPrefix("vfs://") }) }) {
            let verified = try daemon.cli(["backup", "verify", String(url)])
            XCTAssertEqual(verified.status, 0, verified.stdout + verified.stderr)
        }
    }
}
