import Foundation
import XCTest

/// An encrypted store through the real daemon and CLI: made with `backup init --encrypt`, written, restored in
/// full, browsed and restored lazily over FUSE, its keys changed, and opened again after restarts only with a key.
final class EncryptedStoreCLITests: BackupDaemonTestCase {
    let nameMarker = "NAMEMARKERk3v", contentMarker = "CONTENTMARKERp8j"

    func write(_ path: String, _ text: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    func restart(_ arguments: [String] = []) throws {
        XCTAssertEqual(daemon.stop(), 0)
        daemon.extraArguments = ["--browse-root", daemon.directory] + arguments
        try daemon.start()
    }

    /// Every file under the store's directory, searched for the markers.
    func assertNoMarkersInStore() throws {
        let root = daemon.directory + "/backups"
        let files = try XCTUnwrap(FileManager.default.subpathsOfDirectory(atPath: root))
        var searched = 0
        for file in files {
            let path = root + "/" + file
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue
            else { continue }
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            for marker in [nameMarker, contentMarker] {
                XCTAssertNil(bytes.range(of: Data(marker.utf8)), "\(file) holds \(marker) in the clear")
                XCTAssertFalse(file.contains(marker), file)
            }
            searched += 1
        }
        XCTAssertGreaterThan(searched, 5)
    }

    func testEncryptedStoreThroughTheCLI() throws {
        try restart()
        let passwordFile = daemon.directory + "/password", newPasswordFile = daemon.directory + "/new-password"
        let wrongFile = daemon.directory + "/wrong-password"
        try write(passwordFile, "correct horse battery staple\n")
        try write(newPasswordFile, "a second passphrase, for the rotation\n")
        try write(wrongFile, "not the passphrase at all\n")

        let plain = try daemon.cli(["backup", "init", destination, "--password-file", passwordFile])
        XCTAssertNotEqual(plain.status, 0, "a passphrase for a plain store was accepted")
        XCTAssertTrue(plain.stderr.contains("goes with --encrypt"), plain.stderr)
        let made = try daemon.cli(["backup", "init", destination, "--encrypt", "--password-file", passwordFile])
        XCTAssertEqual(made.status, 0, made.stderr)
        XCTAssertTrue(made.stdout.contains("\"Encrypted\" : true"), made.stdout)
        let again = try daemon.cli(["backup", "init", destination, "--encrypt", "--password-file", passwordFile])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("already holds a backup store"), again.stderr)

        XCTAssertEqual(try daemon.cli(["create", "secret"]).status, 0)
        let volume = daemon.root + "/vfs/secret"
        try FileManager.default.createDirectory(atPath: volume + "/dir-" + nameMarker,
                                                withIntermediateDirectories: true)
        for index in 0..<10 {
            try write(volume + "/dir-\(nameMarker)/\(nameMarker)-\(index).txt", "\(contentMarker) file \(index)\n")
        }
        try write(volume + "/large.log", String(repeating: "\(contentMarker) a long line of a log\n", count: 50_000))
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "secret", "--name", "s1"]).status, 0)
        let backup = try daemon.cli(["backup", "create", "s1", "--dest", destination])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let url = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try assertNoMarkersInStore()

        // The daemon holds the key it was given: a full restore, a browse mount, a lazy volume.
        let verified = try daemon.cli(["backup", "verify", url])
        XCTAssertTrue(verified.stdout.contains("0 problem(s)"), verified.stdout + verified.stderr)
        XCTAssertEqual(try daemon.cli(["create", "copy", "--backup", url]).status, 0)
        XCTAssertEqual(try TreeDescription.describe(daemon.root + "/vfs/copy"), try TreeDescription.describe(volume))
        let target = daemon.directory + "/browse"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let mounted = try daemon.cli(["backup", "mount", url, target])
        XCTAssertEqual(mounted.status, 0, mounted.stderr)
        XCTAssertEqual(try String(contentsOfFile: target + "/dir-\(nameMarker)/\(nameMarker)-3.txt", encoding: .utf8),
                       "\(contentMarker) file 3\n")
        XCTAssertEqual(try daemon.cli(["backup", "umount", target]).status, 0)
        XCTAssertEqual(try daemon.cli(["create", "lazy", "--backup", url, "--lazy"]).status, 0)
        let lazyPath = try daemon.cli(["mount", "lazy"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: lazyPath + "/large.log")),
                       try Data(contentsOf: URL(fileURLWithPath: volume + "/large.log")))
        XCTAssertEqual(try daemon.cli(["hydrate", "lazy", "--wait"]).status, 0)
        XCTAssertEqual(try daemon.cli(["umount", "lazy"]).status, 0)

        // After a restart the key is gone: a clear error, a wrong passphrase refused, the right one accepted.
        try restart()
        let locked = try daemon.cli(["backup", "list", destination])
        XCTAssertNotEqual(locked.status, 0)
        XCTAssertTrue(locked.stderr.contains("encrypted store") && locked.stderr.contains("--password-file"),
                      locked.stderr)
        let wrong = try daemon.cli(["backup", "list", destination, "--password-file", wrongFile])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.stderr.contains("opens none of the 1 key(s)"), wrong.stderr)
        let listed = try daemon.cli(["backup", "list", destination, "--password-file", passwordFile])
        XCTAssertEqual(listed.status, 0, listed.stderr)
        XCTAssertTrue(listed.stdout.contains(url), listed.stdout)

        // A second key, then the first removed: only the new passphrase opens the store.
        let added = try daemon.cli(["backup", "key", "add", destination, "--new-password-file", newPasswordFile])
        XCTAssertEqual(added.status, 0, added.stderr)
        let keys = try JSONSerialization.jsonObject(
            with: Data(try daemon.cli(["backup", "key", "list", destination]).stdout.utf8)) as? [[String: Any]]
        XCTAssertEqual(keys?.count, 2)
        let addedID = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(added.stdout.utf8))
                                     as? [String: Any])?["ID"] as? String)
        let firstID = try XCTUnwrap(keys?.compactMap { $0["ID"] as? String }.first { $0 != addedID })
        XCTAssertEqual(try daemon.cli(["backup", "key", "remove", destination, firstID]).status, 0)
        let last = try daemon.cli(["backup", "key", "remove", destination, addedID])
        XCTAssertNotEqual(last.status, 0)
        XCTAssertTrue(last.stderr.contains("last key"), last.stderr)
        try restart()
        let old = try daemon.cli(["backup", "inspect", url, "--password-file", passwordFile])
        XCTAssertNotEqual(old.status, 0, "a removed key still opens the store")
        let new = try daemon.cli(["backup", "inspect", url, "--password-file", newPasswordFile])
        XCTAssertEqual(new.status, 0, new.stderr)

        // Scheduled backups need the daemon to open the store by itself after a restart.
        let refused = try daemon.cli(["backup", "policy", "set", "secret", "--dest", destination, "--every", "1d",
                                      "--keep-last", "3"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("--store-password-file"), refused.stderr)
        try restart(["--store-password-file", "\(destination)=\(newPasswordFile)"])
        let unattended = try daemon.cli(["backup", "list", destination])
        XCTAssertEqual(unattended.status, 0, unattended.stderr)
        XCTAssertTrue(unattended.stdout.contains(url), unattended.stdout)
        let policy = try daemon.cli(["backup", "policy", "set", "secret", "--dest", destination, "--every", "1d",
                                     "--keep-last", "3"])
        XCTAssertEqual(policy.status, 0, policy.stderr)
        XCTAssertEqual(try daemon.cli(["create", "copy2", "--backup", url]).status, 0)
        XCTAssertEqual(try TreeDescription.describe(daemon.root + "/vfs/copy2"), try TreeDescription.describe(volume))
        try assertNoMarkersInStore()
    }
}
