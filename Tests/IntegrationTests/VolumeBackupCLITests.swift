import Foundation
import XCTest

/// `backup create --volume`: a file volume backed up straight into a store, without a snapshot. The data is
/// written once, to the destination; the local snapshot store gets nothing.
final class VolumeBackupCLITests: BackupDaemonTestCase {
    /// The finished job's result, from the last line `--json` printed.
    private func backUp(_ volume: String) throws -> [String: String] {
        let run = try daemon.cli(["backup", "create", "--volume", volume, "--dest", destination, "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let last = run.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let job = try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any]
        XCTAssertEqual(job?["State"] as? String, "succeeded", last)
        return job?["Result"] as? [String: String] ?? [:]
    }

    /// Regular files in the local snapshot store (blocks, packs, manifests).
    private func localStoreFiles() -> [String] {
        let root = daemon.root + "/snapshots"
        let files = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? []
        return files.filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isDirectory)
                && !isDirectory.boolValue && !path.hasSuffix("format.json")
        }
    }

    func testVolumeBackedUpWithoutASnapshotRestoresAndIsIncremental() throws {
        XCTAssertEqual(try daemon.cli(["create", "direct", "--size", "1G"]).status, 0)
        let source = try TreeDescription.populate(daemon.root + "/vfs/direct")
        let first = try TreeDescription.describe(source)
        let result = try backUp("direct")
        let url = try XCTUnwrap(result["URL"], "\(result)")
        XCTAssertTrue(url.hasPrefix(destination + "?backup=backup-") && url.hasSuffix("&volume=direct"), url)
        XCTAssertGreaterThan(Int(result["BytesRead"] ?? "") ?? 0, 3_000_000, "\(result)")
        XCTAssertEqual(try daemon.cli(["snapshot", "list", "direct", "--format", "table"]).stdout
            .split(separator: "\n").count, 1, "no snapshot, only the table's header")
        XCTAssertEqual(localStoreFiles(), [], "nothing written to the local snapshot store")

        // One file changes: the next backup rereads only it, against the last one in that store.
        try Command.check("/bin/sh", ["-c", "echo changed >> '\(source)/small.txt'"])
        let second = try TreeDescription.describe(source)
        let again = try backUp("direct")
        let secondURL = try XCTUnwrap(again["URL"], "\(again)")
        XCTAssertEqual(again["BytesRead"], "\("small\nchanged\n".utf8.count)", "only the changed file is reread")
        XCTAssertEqual(localStoreFiles(), [])

        for (name, backup, expected) in [("copy1", url, first), ("copy2", secondURL, second)] {
            let restored = try daemon.cli(["create", name, "--backup", backup])
            XCTAssertEqual(restored.status, 0, restored.stderr)
            XCTAssertEqual(try TreeDescription.describe(daemon.root + "/vfs/" + name), expected, name)
            XCTAssertEqual(try daemon.cli(["backup", "verify", backup]).status, 0)
        }
    }

    /// Into an encrypted store: the blocks are sealed and named by the store's keyed hash as a copy would name
    /// them, and the backup restores.
    func testVolumeBackedUpIntoAnEncryptedStore() throws {
        let passwordFile = daemon.directory + "/password"
        try Data("a passphrase for the direct backup\n".utf8).write(to: URL(fileURLWithPath: passwordFile))
        let made = try daemon.cli(["backup", "init", destination, "--encrypt", "--password-file", passwordFile])
        XCTAssertEqual(made.status, 0, made.stderr)
        XCTAssertEqual(try daemon.cli(["create", "sealed"]).status, 0)
        let source = try TreeDescription.populate(daemon.root + "/vfs/sealed")
        let expected = try TreeDescription.describe(source)
        let url = try XCTUnwrap(try backUp("sealed")["URL"])
        XCTAssertEqual(localStoreFiles(), [])
        let restored = try daemon.cli(["create", "unsealed", "--backup", url])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        XCTAssertEqual(try TreeDescription.describe(daemon.root + "/vfs/unsealed"), expected)
        XCTAssertEqual(try daemon.cli(["backup", "verify", url]).status, 0)
    }

    func testVolumeBackupRequestsAreRefusedClearly() throws {
        XCTAssertEqual(try daemon.cli(["create", "plain"]).status, 0)
        for (arguments, expected) in [
            (["backup", "create", "--volume", "nosuch", "--dest", destination], "no volume named 'nosuch'"),
            (["backup", "create", "snap", "--volume", "plain", "--dest", destination], "one of them"),
            (["backup", "create", "--dest", destination], "one of them"),
            // Not a backup store: refused (by the driver registry here, where ebs is not enabled).
            (["backup", "create", "--volume", "plain", "--dest", "ebs://us-east-1"], "ebs"),
        ] {
            let run = try daemon.cli(arguments)
            XCTAssertNotEqual(run.status, 0, "\(arguments)")
            XCTAssertTrue(run.stderr.contains(expected), "\(arguments): \(run.stderr)")
        }
    }
}
