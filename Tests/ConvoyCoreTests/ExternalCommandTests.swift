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
}
