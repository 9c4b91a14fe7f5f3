import ConvoyTestSupport
import Foundation
import XCTest

/// `convoy backup forget` through the real daemon and CLI on a `vfs://` store: a dry run deletes nothing, the
/// real run leaves exactly what the policy keeps (with the reasons printed), frees the blocks only forgotten
/// backups used, the kept backup restores byte for byte, and a backup a lazy volume still reads is kept.
final class ForgetCLITests: BackupDaemonTestCase {
    private func backups(_ volume: String) throws -> [String] {
        let listed = try daemon.cli(["backup", "list", destination, "--volume-name", volume]).stdout
        let object = try JSONSerialization.jsonObject(with: Data(listed.utf8)) as? [String: Any]
        return Array((object ?? [:]).keys)
    }

    /// The forget's verdicts by URL: (kept, reasons).
    private func verdicts(_ output: String) throws -> [String: (Bool, [String])] {
        let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
        let entries = object?["Backups"] as? [[String: Any]] ?? []
        return Dictionary(uniqueKeysWithValues: entries.map {
            (($0["URL"] as? String) ?? "", (($0["Keep"] as? Bool) ?? false, ($0["Reasons"] as? [String]) ?? []))
        })
    }

    private func storeBytes() throws -> Int {
        let out = try Command.check("/usr/bin/du", ["-sb", daemon.directory + "/backups"])
        return Int(out.split(separator: "\t")[0]) ?? 0
    }

    func testForgetKeepsWhatThePolicySaysAndFreesTheRest() throws {
        XCTAssertEqual(try daemon.cli(["create", "data"]).status, 0)
        var urls: [String] = []
        var contents: [Data] = []
        for round in 0..<4 {
            // Each round's file is new data: the older backups hold blocks no other backup uses.
            let bytes = Data(TreeFixture.randomBytes(600_000, seed: UInt64(40 + round)))
            try bytes.write(to: URL(fileURLWithPath: daemon.root + "/vfs/data/file.bin"))
            contents.append(bytes)
            XCTAssertEqual(try daemon.cli(["snapshot", "create", "data", "--name", "s\(round)"]).status, 0)
            let made = try daemon.cli(["backup", "create", "s\(round)", "--dest", destination])
            XCTAssertEqual(made.status, 0, made.stderr)
            urls.append(made.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            Thread.sleep(forTimeInterval: 1.1)  // backup times have one-second precision
        }
        let before = try storeBytes()

        let dry = try daemon.cli(["backup", "forget", destination, "--keep-last", "2", "--dry-run"])
        XCTAssertEqual(dry.status, 0, dry.stderr)
        XCTAssertEqual(try verdicts(dry.stdout).values.filter { !$0.0 }.count, 2, dry.stdout)
        XCTAssertEqual(Set(try backups("data")), Set(urls), "a dry run deleted backups")

        let refused = try daemon.cli(["backup", "forget", destination])
        XCTAssertNotEqual(refused.status, 0, "a forget without any rule must be refused")
        XCTAssertTrue(refused.stderr.contains("would forget every backup"), refused.stderr)

        let done = try daemon.cli(["backup", "forget", destination, "--keep-last", "2"])
        XCTAssertEqual(done.status, 0, done.stderr)
        let judged = try verdicts(done.stdout)
        for url in urls.suffix(2) {
            XCTAssertEqual(judged[url]?.0, true, "\(url) is not kept")
            XCTAssertEqual(judged[url]?.1, ["last"], "\(url) is not kept by 'last'")
        }
        for url in urls.prefix(2) { XCTAssertEqual(judged[url]?.0, false, "\(url) is not forgotten") }
        let table = try daemon.cli(["backup", "forget", destination, "--keep-last", "2", "--dry-run",
                                    "--format", "table"])
        XCTAssertTrue(table.stdout.contains("2 kept, 0 would be forgotten (dry run)"), table.stdout)
        XCTAssertEqual(Set(try backups("data")), Set(urls.suffix(2)))
        XCTAssertLessThan(try storeBytes(), before - 800_000, "the forgotten backups' blocks were not freed")

        let restored = try daemon.cli(["create", "copy", "--backup", urls[3]])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: daemon.root + "/vfs/copy/file.bin")), contents[3])
        XCTAssertEqual(try daemon.cli(["backup", "verify", urls[2]]).status, 0, "a kept backup lost blocks")
    }

    func testABackupALazyVolumeReadsIsKept() throws {
        // Hydration held back, so the lazy volume below still reads its backup when the forget runs.
        XCTAssertEqual(daemon.stop(), 0)
        daemon.extraArguments = ["--hydration-pause", "60"]
        try daemon.start()
        XCTAssertEqual(try daemon.cli(["create", "data"]).status, 0)
        var urls: [String] = []
        for round in 0..<2 {
            try Data(repeating: UInt8(round + 1), count: 300_000)
                .write(to: URL(fileURLWithPath: daemon.root + "/vfs/data/file.bin"))
            XCTAssertEqual(try daemon.cli(["snapshot", "create", "data", "--name", "s\(round)"]).status, 0)
            urls.append(try daemon.cli(["backup", "create", "s\(round)", "--dest", destination]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines))
            Thread.sleep(forTimeInterval: 1.1)
        }
        XCTAssertEqual(try daemon.cli(["create", "lazy", "--backup", urls[0], "--lazy"]).status, 0)
        XCTAssertTrue(try daemon.cli(["inspect", "lazy"]).stdout.contains("LazyBackup"), "the volume is not lazy")
        let done = try daemon.cli(["backup", "forget", destination, "--keep-last", "1"])
        XCTAssertEqual(done.status, 0, done.stderr)
        XCTAssertEqual(try verdicts(done.stdout)[urls[0]]?.1, ["lazy volume lazy"], done.stdout)
        XCTAssertEqual(Set(try backups("data")), Set(urls), "the lazy volume's backup was forgotten")
    }

    /// `backup verify DEST --all`: every backup's blocks present; with a subset, blocks re-read and a corrupt one
    /// named (exit 1).
    func testVerifyAllChecksEveryBackupAndReadsTheSubsetAsked() throws {
        XCTAssertEqual(try daemon.cli(["create", "data"]).status, 0)
        for round in 0..<2 {
            try TreeFixture.write(daemon.root + "/vfs/data/f\(round)",
                                  TreeFixture.randomBytes(40_000, seed: 70 + UInt64(round)))
            XCTAssertEqual(try daemon.cli(["snapshot", "create", "data", "--name", "v\(round)"]).status, 0)
            XCTAssertEqual(try daemon.cli(["backup", "create", "v\(round)", "--dest", destination]).status, 0)
        }
        let whole = try daemon.cli(["backup", "verify", destination, "--all", "--read-data-subset", "all"])
        XCTAssertEqual(whole.status, 0, whole.stderr)
        XCTAssertTrue(whole.stdout.contains("2 backups"), whole.stdout)
        XCTAssertNotEqual(try daemon.cli(["backup", "verify", destination, "--read-data-subset", "5%"]).status, 0,
                          "a subset without --all")

        let packs = try Command.check("/usr/bin/find", [daemon.directory + "/backups", "-type", "f",
                                                        "-path", "*/packs/*", "!", "-name", "*.idx"])
            .split(separator: "\n").map(String.init)
        for pack in packs {
            var bytes = try Data(contentsOf: URL(fileURLWithPath: pack))
            bytes[bytes.count / 2] ^= 0xff
            try bytes.write(to: URL(fileURLWithPath: pack))
        }
        XCTAssertFalse(packs.isEmpty)
        XCTAssertEqual(try daemon.cli(["backup", "verify", destination, "--all"]).status, 0,
                       "without reading, a corrupt byte cannot be seen")
        let read = try daemon.cli(["backup", "verify", destination, "--all", "--read-data-subset", "1/1"])
        XCTAssertEqual(read.status, 1, read.stdout)
        XCTAssertTrue(read.stderr.contains("corrupt block"), read.stderr)
    }
}
