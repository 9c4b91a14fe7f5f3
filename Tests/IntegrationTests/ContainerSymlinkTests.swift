import ConvoyTestSupport
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A container owns the trees convoy walks as root. Symlinks it plants where the backup has a directory must
/// never lead hydration (which changes owners and times to the backup's) out of the volume: the host files they
/// point at keep their owner, mode, times and bytes.
final class ContainerSymlinkTests: XCTestCase {
    var daemon: DaemonHarness!

    override func setUpWithError() throws {
        daemon = try DaemonHarness()
        // Slow hydration, so the planted links are in place before it reaches the directory they replace.
        daemon.extraArguments = ["--hydration-pause", "0.3"]
        try daemon.start()
    }

    override func tearDown() {
        daemon.cleanUp()
    }

    private struct Facts: Equatable {
        var uid: UInt32, gid: UInt32, mode: UInt32, mtime: Int, bytes: Data
    }

    private func facts(_ path: String) throws -> Facts {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw HarnessError("cannot stat \(path)") }
        return Facts(uid: info.st_uid, gid: info.st_gid, mode: info.st_mode, mtime: info.st_mtim.tv_sec,
                     bytes: try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Host files named as the backup's files under `zz/` are, owned by root, mode 0600, dated 2001.
    private func hostFiles(_ directory: String) throws -> [String: Facts] {
        try Command.check("/bin/sh", ["-c", "mkdir -p '\(directory)' && cd '\(directory)' && "
            + "for i in 1 2 3; do echo host-$i > f$i; chmod 600 f$i; touch -d 2001-01-01 f$i; done"])
        var result: [String: Facts] = [:]
        for name in ["f1", "f2", "f3"] { result[name] = try facts(directory + "/" + name) }
        return result
    }

    func testPlantedSymlinksLeadHydrationNowhereOutsideTheVolume() throws {
        // The backup: a dozen files first (hydration takes them in order), then `zz/` with files owned by 4242.
        XCTAssertEqual(try daemon.cli(["create", "source"]).status, 0)
        let source = daemon.root + "/vfs/source"
        try Command.check("/bin/sh", ["-c", "cd '\(source)' && mkdir a zz yy && "
            + "for i in $(seq 10 21); do echo $i > a/f$i; done && "
            + "for i in 1 2 3; do echo backup-$i > zz/f$i; echo backup-$i > yy/f$i; done && "
            + "chown -R 4242:4242 zz yy && chmod 666 zz/* yy/*"])
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "source", "--name", "s1"]).status, 0)
        let backup = try daemon.cli(["backup", "create", "s1", "--dest", "vfs://\(daemon.directory)/backups"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let url = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        // Targets outside the volume: one for an absolute link, one that a relative link reaches from the
        // overlay's path (`<root>/lazy/lazy/merged/../../../relative-target` is `<root>/relative-target`) but
        // not from the volume's own directory, so checking the upper layer first does not stop it.
        let absoluteTarget = daemon.directory + "/absolute-target"
        let relativeTarget = daemon.root + "/relative-target"
        let absoluteBefore = try hostFiles(absoluteTarget)
        let relativeBefore = try hostFiles(relativeTarget)

        let created = try daemon.cli(["create", "lazy", "--backup", url, "--lazy"])
        XCTAssertEqual(created.status, 0, created.stderr)
        let merged = try daemon.cli(["mount", "lazy"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // The backup below the overlay gives no device and no setuid program to anyone.
        let lower = try mountFacts(daemon.root + "/lazy/lazy/backup")
        XCTAssertTrue(lower.options.isSuperset(of: ["ro", "nosuid", "nodev"]), "\(lower.options)")
        try Command.check("/bin/sh", ["-c", "cd '\(merged)' && rm -rf zz yy && ln -s '\(absoluteTarget)' zz "
            + "&& ln -s ../../../relative-target yy"])
        XCTAssertEqual(try daemon.cli(["umount", "lazy"]).status, 0)
        let waited = try daemon.cli(["hydrate", "lazy", "--wait"])
        XCTAssertEqual(waited.status, 0, waited.stderr)

        for (name, before) in absoluteBefore {
            XCTAssertEqual(try facts(absoluteTarget + "/" + name), before, "absolute link: \(name) was changed")
        }
        for (name, before) in relativeBefore {
            XCTAssertEqual(try facts(relativeTarget + "/" + name), before, "relative link: \(name) was changed")
        }
        // The volume keeps what the container made of it: its links, and the rest of the backup.
        let volume = daemon.root + "/vfs/lazy"
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: volume + "/zz"), absoluteTarget)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: volume + "/yy"),
                       "../../../relative-target")
        XCTAssertEqual(try String(contentsOfFile: volume + "/a/f21", encoding: .utf8), "21\n")
    }

    /// For `CONVOY_RACE_SECONDS` (3 by default; 60 for bench/RELIABILITY.md), lazy volumes hydrate while their
    /// container keeps replacing `zz` (a directory in the backup, owned by 4242) with a symlink to a host
    /// directory and back: no host file ever changes owner, mode, time or bytes.
    func testADirectoryReplacedByAHostLinkDuringHydrationChangesNoHostFile() throws {
        let seconds = Double(ProcessInfo.processInfo.environment["CONVOY_RACE_SECONDS"] ?? "") ?? 3
        XCTAssertEqual(daemon.stop(), 0)
        daemon.extraArguments = ["--hydration-pause", "0.05"]
        try daemon.start()
        XCTAssertEqual(try daemon.cli(["create", "source"]).status, 0)
        let source = daemon.root + "/vfs/source"
        try Command.check("/bin/sh", ["-c", "cd '\(source)' && mkdir a zz && "
            + "for i in $(seq 10 40); do echo $i > a/f$i; done && "
            + "for i in 1 2 3; do echo backup-$i > zz/f$i; done && chown -R 4242:4242 zz && chmod 666 zz/*"])
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "source", "--name", "s1"]).status, 0)
        let backup = try daemon.cli(["backup", "create", "s1", "--dest", "vfs://\(daemon.directory)/backups"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let url = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let host = daemon.directory + "/host"
        let before = try hostFiles(host)

        let deadline = Date().addingTimeInterval(seconds)
        var rounds = 0
        var swaps = 0
        repeat {
            let name = "lazy\(rounds)"
            XCTAssertEqual(try daemon.cli(["create", name, "--backup", url, "--lazy"]).status, 0)
            let merged = try daemon.cli(["mount", name]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let stop = StopFlag()
            let swapper = Thread {
                while !stop.isSet {
                    try? FileManager.default.removeItem(atPath: merged + "/zz")
                    if symlink(host, merged + "/zz") == 0 { stop.increment() }
                    usleep(200)
                    unlink(merged + "/zz")
                    mkdir(merged + "/zz", 0o755)
                }
            }
            swapper.start()
            let waited = try daemon.cli(["hydrate", name, "--wait"])
            stop.set()
            while swapper.isExecuting { usleep(1000) }
            swaps += stop.count
            XCTAssertEqual(waited.status, 0, waited.stderr)
            for (file, facts) in before {
                XCTAssertEqual(try self.facts(host + "/" + file), facts, "round \(rounds): host file \(file) changed")
            }
            XCTAssertEqual(try daemon.cli(["umount", name]).status, 0)
            XCTAssertEqual(try daemon.cli(["delete", name]).status, 0)
            rounds += 1
        } while Date() < deadline && testRun?.failureCount == 0
        print("symlink swap during hydration: \(rounds) lazy volumes hydrated in \(Int(seconds)) s, \(swaps) "
              + "directories replaced by a host link, 0 host files changed")
    }
}
