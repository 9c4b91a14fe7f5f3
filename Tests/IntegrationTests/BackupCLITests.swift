import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Snapshots, backups and restores through the real daemon and CLI, on a `vfs://` destination.
final class BackupCLITests: BackupDaemonTestCase {
    /// The daemon again, with the Convoy 0.5 store another program wrote listed as an operator would list it
    /// (and `destination`, where its backups go).
    private func restartListingTheOldStore() throws {
        XCTAssertEqual(daemon.stop(), 0)
        daemon.extraArguments = ["--backup-destinations", "vfs://\(daemon.directory)/old-store,\(destination)"]
        try daemon.start()
    }

    func describe(_ directory: String) throws -> String { try TreeDescription.describe(directory) }

    func populate(_ volume: String) throws -> String { try TreeDescription.populate(daemon.root + "/vfs/" + volume) }

    func testSnapshotBackupAndRestoreRoundTrip() throws {
        XCTAssertEqual(try daemon.cli(["create", "source", "--size", "1G"]).status, 0)
        let source = try populate("source")
        let snapshot = try daemon.cli(["snapshot", "create", "source", "--name", "snap1"])
        XCTAssertEqual(snapshot.status, 0, snapshot.stderr)
        XCTAssertEqual(snapshot.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "snap1")
        // The snapshot is frozen: later changes do not reach it.
        let frozen = try describe(source)
        try Command.check("/bin/sh", ["-c", "echo changed >> '\(source)/small.txt'; rm '\(source)/dir/random.bin'"])

        let backup = try daemon.cli(["backup", "create", "snap1", "--dest", destination])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let url = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(url.hasPrefix(destination + "?backup=backup-") && url.hasSuffix("&volume=source"), url)

        let listed = try daemon.cli(["backup", "list", destination])
        XCTAssertTrue(listed.stdout.contains(url), listed.stdout)
        let inspected = try daemon.cli(["backup", "inspect", url])
        XCTAssertTrue(inspected.stdout.contains("\"SnapshotName\" : \"snap1\""), inspected.stdout)
        XCTAssertTrue(inspected.stdout.contains("\"VolumeSize\" : 1073741824"), inspected.stdout)
        let verified = try daemon.cli(["backup", "verify", url])
        XCTAssertEqual(verified.status, 0, verified.stderr)
        XCTAssertTrue(verified.stdout.contains("0 problem(s)"), verified.stdout)

        let restored = try daemon.cli(["create", "copy", "--backup", url])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        XCTAssertTrue(restored.stdout.contains("\"Size\" : 1073741824"),
                      "the size comes with the backup: \(restored.stdout)")
        let copy = daemon.root + "/vfs/copy"
        XCTAssertEqual(try describe(copy), frozen)
        var info = stat()
        XCTAssertEqual(lstat(copy + "/sparse.img", &info), 0)
        XCTAssertLessThan(Int(info.st_blocks) * 512, 1 << 20, "sparse stays sparse")

        // Restoring onto an existing name is refused and leaves the volume alone.
        let again = try daemon.cli(["create", "copy", "--backup", url])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.contains("exists already"), again.stderr)
        XCTAssertEqual(try describe(copy), frozen)
    }

    func testIncrementalSnapshotsRereadOnlyChangedFiles() throws {
        XCTAssertEqual(try daemon.cli(["create", "inc"]).status, 0)
        let source = daemon.root + "/vfs/inc"
        for index in 0..<5 {
            try Command.check("/bin/sh", ["-c", "head -c 2000000 /dev/urandom > '\(source)/f\(index)'"])
        }
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "inc", "--name", "inc1"]).status, 0)
        try Command.check("/bin/sh", ["-c", "head -c 2000000 /dev/urandom > '\(source)/f2'"])
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "inc", "--name", "inc2"]).status, 0)
        let second = try JSONSerialization.jsonObject(
            with: Data(try daemon.cli(["snapshot", "inspect", "inc2"]).stdout.utf8)) as? [String: Any]
        XCTAssertEqual(second?["BytesRead"] as? Int, 2_000_000, "only the changed file is reread")
        XCTAssertEqual(second?["Size"] as? Int, 10_000_000)

        let first = try daemon.cli(["backup", "create", "inc1", "--dest", destination]).stdout
        let secondURL = try daemon.cli(["backup", "create", "inc2", "--dest", destination]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(first.isEmpty)
        let list = try daemon.cli(["snapshot", "list", "inc", "--format", "table"]).stdout
        XCTAssertTrue(list.contains("inc1") && list.contains("inc2"), list)
        // Deleting the first backup keeps the second whole.
        let firstURL = first.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try daemon.cli(["backup", "delete", firstURL]).status, 0)
        XCTAssertEqual(try daemon.cli(["backup", "verify", secondURL]).status, 0)
        XCTAssertEqual(try daemon.cli(["backup", "inspect", firstURL]).status, 1)
        // Deleting a volume deletes its snapshots.
        XCTAssertEqual(try daemon.cli(["delete", "inc"]).status, 0)
        XCTAssertEqual(try daemon.cli(["snapshot", "inspect", "inc1"]).status, 1)
    }

    func testDamagedBackupIsReportedAndItsRestoreLeavesNothing() throws {
        XCTAssertEqual(try daemon.cli(["create", "fragile"]).status, 0)
        let source = daemon.root + "/vfs/fragile"
        for index in 0..<3 {
            try Command.check("/bin/sh", ["-c", "head -c 700000 /dev/urandom > '\(source)/f\(index)'"])
        }
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "fragile", "--name", "fragile1"]).status, 0)
        let url = try daemon.cli(["backup", "create", "fragile1", "--dest", destination]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let blocks = try Command.check("/usr/bin/find",
                                       [daemon.directory + "/backups", "-path", "*/blocks/*", "-type", "f"])
            .split(separator: "\n").map(String.init).sorted()
        XCTAssertGreaterThanOrEqual(blocks.count, 3)
        // One block flipped, one removed.
        try Command.check("/bin/sh",
                          ["-c", "printf 'XXXX' | dd of='\(blocks[0])' bs=1 seek=100 conv=notrunc 2>/dev/null"])
        try FileManager.default.removeItem(atPath: blocks[1])
        let corruptName = URL(fileURLWithPath: blocks[0]).lastPathComponent
        let missingName = URL(fileURLWithPath: blocks[1]).lastPathComponent

        let verify = try daemon.cli(["backup", "verify", url])
        XCTAssertEqual(verify.status, 1)
        XCTAssertTrue(verify.stderr.contains("corrupt block \(corruptName)"), verify.stderr)
        XCTAssertTrue(verify.stderr.contains("missing block \(missingName)"), verify.stderr)

        let restore = try daemon.cli(["create", "half", "--backup", url])
        XCTAssertEqual(restore.status, 1)
        XCTAssertTrue(restore.stderr.contains(corruptName) || restore.stderr.contains(missingName), restore.stderr)
        XCTAssertEqual(try daemon.cli(["inspect", "half"]).status, 1, "no half volume")
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.root + "/vfs/half"))
    }

    func testKillNineDuringBackupThenRestartLeavesAStoreThatVerifiesAndTheBackupCanBeRedone() throws {
        XCTAssertEqual(try daemon.cli(["create", "big"]).status, 0)
        let source = daemon.root + "/vfs/big"
        try Command.check("/bin/sh",
                          ["-c", "for i in $(seq 0 11); do head -c 25000000 /dev/urandom > '\(source)/f'$i; done"])
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "big", "--name", "big1"]).status, 0)

        // Start the upload in the background and kill the daemon while it runs.
        let client = Process()
        client.executableURL = URL(fileURLWithPath: DaemonHarness.binary)
        client.arguments = ["backup", "create", "big1", "--dest", destination, "--socket", daemon.socket, "--json"]
        client.standardOutput = FileHandle.nullDevice
        client.standardError = FileHandle.nullDevice
        try client.run()
        let deadline = Date().addingTimeInterval(60)
        var sawProgress = false
        while Date() < deadline && !sawProgress {
            let jobs = try daemon.cli(["job", "list"]).stdout
            sawProgress = jobs.contains("\"Kind\" : \"backup create\"") && jobs.contains("\"State\" : \"running\"")
            usleep(20_000)
        }
        XCTAssertTrue(sawProgress, "the backup job was seen running")
        daemon.crash()
        client.waitUntilExit()
        XCTAssertNotEqual(client.terminationStatus, 0, "the CLI reports that it lost the daemon")

        try daemon.start()
        let jobs = try daemon.cli(["job", "list"]).stdout
        XCTAssertTrue(jobs.contains("\"State\" : \"interrupted\""), jobs)
        XCTAssertTrue(daemon.log_().contains("marked interrupted"), daemon.log_())
        // Redo it: it succeeds and verifies clean.
        let redo = try daemon.cli(["backup", "create", "big1", "--dest", destination])
        XCTAssertEqual(redo.status, 0, redo.stderr)
        let url = redo.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try daemon.cli(["backup", "verify", url]).status, 0)
        // The dead daemon's lease does not block collection: deleting the backup frees every block.
        let deleted = try daemon.cli(["backup", "delete", url])
        XCTAssertEqual(deleted.status, 0, deleted.stderr)
        XCTAssertFalse(deleted.stdout.contains("CollectionDeferred"), deleted.stdout)
        let left = try Command.check("/usr/bin/find", [daemon.directory + "/backups", "(", "-path", "*/blocks/*", "-o",
                                                       "-path", "*/packs/*", ")", "-type", "f"])
        XCTAssertEqual(left, "", "no block or pack left behind")
    }

    func testBadBackupRequestsAreRefusedClearly() throws {
        // Listed: the old store (read below) and the destination of backups; a store never written is refused.
        XCTAssertEqual(daemon.stop(), 0)
        daemon.extraArguments = ["--backup-destinations", "vfs://\(daemon.directory)/old-store"]
        try daemon.start()
        let cases: [([String], String)] = [
            (["backup", "create", "nosnap", "--dest", destination], "no snapshot named 'nosnap'"),
            (["backup", "list", "ftp://x"], "not a backup destination"),
            (["backup", "inspect", "vfs:///tmp/x"], "not a backup URL"),
            (["backup", "inspect", "vfs:///tmp/x?backup=backup-1&volume=../etc"], "invalid volume name"),
            (["create", "r1", "--backup",
              "vfs://\(daemon.directory)/old-store?backup=backup-0000000000000000&volume=none"],
             "no backup backup-0000000000000000"),
            (["snapshot", "create", "novolume"], "no volume named 'novolume'"),
            // A store this daemon never wrote and nobody listed: nothing is read from it, by any path.
            (["create", "r2", "--backup", destination + "?backup=backup-0000000000000000&volume=none"],
             "backup destination \(destination) is not allowed on this daemon: it has never written there"),
            (["create", "r3", "--backup", destination + "?backup=backup-0000000000000000&volume=none", "--lazy"],
             "or run with --allow-any-backup-destination"),
            (["backup", "list", destination], "add it (convoy daemon --backup-destinations \(destination))"),
            (["backup", "verify", destination + "?backup=backup-0000000000000000&volume=none"], "is not allowed"),
        ]
        for (arguments, expected) in cases {
            let result = try daemon.cli(arguments)
            XCTAssertEqual(result.status, 1, "\(arguments)")
            XCTAssertTrue(result.stderr.contains(expected), "\(arguments): \(result.stderr)")
        }
        for name in ["r1", "r2", "r3"] { XCTAssertEqual(try daemon.cli(["inspect", name]).status, 1) }
    }

    func testRestoreFromAConvoy05SingleFileBackup() throws {
        try restartListingTheOldStore()
        // A store laid out as Convoy 0.5 wrote it for a vfs volume: the volume's tar.gz and its backup_<id>.cfg.
        let store = daemon.directory + "/old-store"
        let volumeDirectory = store + "/convoy-objectstore/volumes/le/ga/legacy1"
        let original = daemon.directory + "/original"
        try Command.check("/bin/sh", ["-c", """
            set -e; mkdir -p '\(volumeDirectory)/backups' '\(volumeDirectory)/BackupFiles' '\(original)/docs'
            echo 'from convoy 0.5' > '\(original)/docs/readme'; head -c 96M /dev/urandom > '\(original)/data.bin'
            ln -s docs/readme '\(original)/link'; chown 77:88 '\(original)/data.bin'; chmod 640 '\(original)/data.bin'
            tar -czf '\(volumeDirectory)/BackupFiles/backup-0a1b2c3d4e5f6789.bak' -C '\(original)' .
            echo '{"Name":"legacy1","Driver":"vfs","Size":0,"CreatedTime":"Mon Jan 1 00:00:00 +0000 2018"}' \
            > '\(volumeDirectory)/volume.cfg'
            """])
        let config = """
            {"Name":"backup-0a1b2c3d4e5f6789","VolumeName":"legacy1","SnapshotName":"snapshot-1",\
            "CreatedTime":"Mon Jan 1 00:00:00 +0000 2018",\
            "SingleFile":\
            {"FilePath":"convoy-objectstore/volumes/le/ga/legacy1/BackupFiles/backup-0a1b2c3d4e5f6789.bak"}}
            """
        try Data(config.utf8).write(
            to: URL(fileURLWithPath: volumeDirectory + "/backups/backup_backup-0a1b2c3d4e5f6789.cfg"))

        let url = "vfs://\(store)?backup=backup-0a1b2c3d4e5f6789&volume=legacy1"
        let peakBefore = daemon.peakResidentBytes
        let restored = try daemon.cli(["create", "migrated", "--backup", url])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        // The 96 MB archive is copied to disk in pieces, never held whole.
        XCTAssertLessThan(daemon.peakResidentBytes - peakBefore, 48 << 20, "the daemon read the archive into memory")
        let target = daemon.root + "/vfs/migrated"
        // tar keeps whole seconds of mtime; compare at that precision.
        func seconds(_ text: String) -> [String] {
            text.split(separator: "\n").filter { !$0.hasPrefix("|d|") }.map { line in
                String(line).replacing(/\|(\d+)\.\d+\|/) { "|\($0.1)|" }
            }
        }
        let expected = seconds(try describe(original))
        let actual = seconds(try describe(target))
        XCTAssertEqual(actual, expected, "files, owners, modes and times as in the Convoy backup")

        // A configuration pointing outside its volume is refused, and leaves no volume behind.
        let evil = config.replacingOccurrences(of: "convoy-objectstore/volumes/le/ga/legacy1/BackupFiles/",
                                               with: "../../etc/")
        try Data(evil.utf8).write(
            to: URL(fileURLWithPath: volumeDirectory + "/backups/backup_backup-0a1b2c3d4e5f6789.cfg"))
        let refused = try daemon.cli(["create", "evil", "--backup", url])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("points outside its volume"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.root + "/vfs/evil"))
    }

    func testKillingTheCLIDoesNotStopTheJobAndJSONProgressIsReported() throws {
        XCTAssertEqual(try daemon.cli(["create", "steady"]).status, 0)
        let source = daemon.root + "/vfs/steady"
        try Command.check("/bin/sh",
                          ["-c", "for i in $(seq 0 7); do head -c 25000000 /dev/urandom > '\(source)/f'$i; done"])
        let client = Process()
        client.executableURL = URL(fileURLWithPath: DaemonHarness.binary)
        client.arguments = ["snapshot", "create", "steady", "--name", "steady1", "--json", "--socket", daemon.socket]
        let output = daemon.directory + "/cli.out"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        client.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        client.standardError = FileHandle.nullDevice
        try client.run()
        // Wait for the first progress line, then kill the CLI.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").isEmpty {
            usleep(5_000)
        }
        kill(client.processIdentifier, SIGKILL)
        client.waitUntilExit()
        let firstLine = (try String(contentsOfFile: output, encoding: .utf8)).split(separator: "\n").first
            .map(String.init) ?? ""
        let progress = try JSONSerialization.jsonObject(with: Data(firstLine.utf8)) as? [String: Any]
        XCTAssertEqual(progress?["Kind"] as? String, "snapshot create", firstLine)
        XCTAssertNotNil(progress?["BytesTotal"], firstLine)
        // The job finishes in the daemon all the same.
        var finished = false
        while Date() < deadline && !finished {
            finished = (try daemon.cli(["snapshot", "inspect", "steady1"])).status == 0
            if !finished { usleep(50_000) }
        }
        XCTAssertTrue(finished, "the snapshot completed after its CLI was killed")
        let jobs = try daemon.cli(["job", "list", "--format", "table"]).stdout
        XCTAssertTrue(jobs.contains("snapshot create") && jobs.contains("succeeded"), jobs)
    }

    func testASnapshotNameCannotBeTakenTwiceAtOnce() throws {
        XCTAssertEqual(try daemon.cli(["create", "twin"]).status, 0)
        try Command.check("/bin/sh", ["-c", "for i in $(seq 0 5); do "
                                    + "head -c 20000000 /dev/urandom > '\(daemon.root)/vfs/twin/f'$i; done"])
        let first = Process()
        first.executableURL = URL(fileURLWithPath: DaemonHarness.binary)
        first.arguments = ["snapshot", "create", "twin", "--name", "same", "--socket", daemon.socket]
        first.standardOutput = FileHandle.nullDevice
        first.standardError = FileHandle.nullDevice
        try first.run()
        // While the first runs, the name is taken.
        let deadline = Date().addingTimeInterval(30)
        var sawRunning = false
        while Date() < deadline && !sawRunning {
            sawRunning = try daemon.cli(["job", "list"]).stdout.contains("\"State\" : \"running\"")
            if !sawRunning { usleep(5_000) }
        }
        let second = try daemon.cli(["snapshot", "create", "twin", "--name", "same"])
        first.waitUntilExit()
        XCTAssertEqual(first.terminationStatus, 0)
        XCTAssertEqual(second.status, 1)
        XCTAssertTrue(second.stderr.contains("is being created") || second.stderr.contains("exists already"),
                      second.stderr)
        XCTAssertEqual(try daemon.cli(["snapshot", "inspect", "same"]).status, 0)
    }
}
