import Foundation
import XCTest

/// `convoy daemon --append-only DEST`: backups go on, nothing in DEST is deleted (delete, forget, a policy's
/// retention refused with what to do), and a trusted daemon forgets there afterwards.
final class AppendOnlyCLITests: BackupDaemonTestCase {
    func storeFiles() throws -> Set<String> {
        let root = daemon.directory + "/backups"
        return Set(try FileManager.default.subpathsOfDirectory(atPath: root).filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isDirectory)
                && !isDirectory.boolValue && !path.contains("/leases/")
        })
    }

    func backup(_ snapshot: String) throws -> String {
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "data", "--name", snapshot]).status, 0)
        let made = try daemon.cli(["backup", "create", snapshot, "--dest", destination])
        XCTAssertEqual(made.status, 0, made.stderr)
        return made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testAppendOnlyDestinationKeepsEverything() throws {
        XCTAssertEqual(daemon.stop(), 0)
        daemon.extraArguments = ["--append-only", destination]
        try daemon.start()
        XCTAssertEqual(try daemon.cli(["create", "data"]).status, 0)
        let volume = daemon.root + "/vfs/data"
        try Command.check("/bin/sh", ["-c", "head -c 3000000 /dev/urandom > '\(volume)/a'"])
        let first = try backup("s1")
        // Backup times have one-second precision: in the same second, --keep-last 1 could keep either.
        Thread.sleep(forTimeInterval: 1.1)
        try Command.check("/bin/sh", ["-c", "head -c 3000000 /dev/urandom > '\(volume)/a'"])
        let second = try backup("s2")
        let before = try storeFiles()

        for refused in [["backup", "delete", first], ["backup", "forget", destination, "--keep-last", "1"]] {
            let result = try daemon.cli(refused)
            XCTAssertNotEqual(result.status, 0, "\(refused)")
            XCTAssertTrue(result.stderr.contains("append-only") && result.stderr.contains("trusted host"),
                          result.stderr)
        }
        let dryRun = try daemon.cli(["backup", "forget", destination, "--keep-last", "1", "--dry-run"])
        XCTAssertEqual(dryRun.status, 0, dryRun.stderr)
        let policy = try daemon.cli(["backup", "policy", "set", "data", "--dest", destination, "--every", "1d",
                                     "--keep-daily", "7"])
        XCTAssertNotEqual(policy.status, 0)
        XCTAssertTrue(policy.stderr.contains("append-only"), policy.stderr)
        XCTAssertEqual(try daemon.cli(["backup", "policy", "set", "data", "--dest", destination,
                                       "--every", "1d"]).status, 0, "a policy that only adds backups is fine")
        XCTAssertEqual(try storeFiles(), before, "something in the append-only store was removed or added")
        XCTAssertEqual(try daemon.cli(["create", "old", "--backup", first]).status, 0)

        // A trusted daemon (no --append-only) forgets there at once.
        XCTAssertEqual(daemon.stop(), 0)
        daemon.extraArguments = []
        try daemon.start()
        let forgot = try daemon.cli(["backup", "forget", destination, "--keep-last", "1"])
        XCTAssertEqual(forgot.status, 0, forgot.stderr)
        XCTAssertFalse(forgot.stdout.contains("CollectionDeferred"), forgot.stdout)
        let listed = try daemon.cli(["backup", "list", destination]).stdout
        XCTAssertFalse(listed.contains(first), listed)
        XCTAssertTrue(listed.contains(second), listed)
        XCTAssertTrue(try storeFiles().count < before.count, "the trusted forget freed nothing")
    }
}
