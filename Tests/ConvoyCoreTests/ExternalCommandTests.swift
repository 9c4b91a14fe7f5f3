import ConvoyCore
import Foundation
import XCTest

final class ExternalCommandTests: XCTestCase {
    /// `mount -t glusterfs` leaves its FUSE client running: the command must still be seen to end when it does.
    func testACommandThatLeavesADaemonEndsWhenItExits() async throws {
        let marker = NSTemporaryDirectory() + "convoy-daemon-\(UUID().uuidString)"
        let started = ContinuousClock.now
        let output = try await ExternalCommand.run(
            "/bin/sh", ["-c", "sleep 30 & echo $! > '\(marker)'; echo started"], timeout: .seconds(20),
            leavesDaemon: true)
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(10),
                          "returned when sh exited, not when its child did")
        XCTAssertEqual(output.stdout, "started\n")
        let pid = try XCTUnwrap(Int32(try String(contentsOfFile: marker, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertEqual(kill(pid, 0), 0, "the daemon it left runs on")
        kill(pid, SIGKILL)
        try? FileManager.default.removeItem(atPath: marker)
    }

    func testAFailureNamesTheCommandAndCarriesItsStderr() async {
        do {
            _ = try await ExternalCommand.run("/bin/sh", ["-c", "echo broken >&2; exit 3"], timeout: .seconds(20),
                                              leavesDaemon: true)
            XCTFail("the command failed")
        } catch {
            XCTAssertTrue(error.message.hasPrefix("sh -c echo broken >&2; exit 3 failed (exit 3): broken"),
                          error.message)
        }
    }

    /// Tools the daemon runs (mkfs, mount, the gluster client that lives for days) never see its credentials.
    func testChildrenDoNotInheritTheDaemonsSecrets() async throws {
        let secrets = ["AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI", "AWS_SESSION_TOKEN": "FwoGZXIvYXdzE",
                       "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "STORE_PASSWORD": "hunter2", "GH_TOKEN": "ghp_x"]
        // Other tests (S3, EC2) read some of these from the environment: put back what was there.
        let names = Array(secrets.keys) + ["CONVOY_HARMLESS"]
        let saved = names.map { name in getenv(name).map { String(cString: $0) } }
        defer {
            for (name, value) in zip(names, saved) {
                if let value { setenv(name, value, 1) } else { unsetenv(name) }
            }
        }
        for (name, value) in secrets { setenv(name, value, 1) }
        setenv("CONVOY_HARMLESS", "kept", 1)
        let output = try await ExternalCommand.run("/usr/bin/env", [], timeout: .seconds(20))
        for (name, value) in secrets {
            XCTAssertFalse(output.stdout.contains(name) || output.stdout.contains(value), "\(name) reached the child")
        }
        XCTAssertTrue(output.stdout.contains("CONVOY_HARMLESS=kept"), output.stdout)
        XCTAssertTrue(output.stdout.contains("PATH="), output.stdout)
        // The same for a command that leaves a daemon (it goes through a shell first).
        let daemon = try await ExternalCommand.run("/usr/bin/env", [], timeout: .seconds(20), leavesDaemon: true)
        XCTAssertFalse(daemon.stdout.contains("AWS_SECRET_ACCESS_KEY"), daemon.stdout)
        XCTAssertTrue(daemon.stdout.contains("CONVOY_HARMLESS=kept"), daemon.stdout)
    }
}
