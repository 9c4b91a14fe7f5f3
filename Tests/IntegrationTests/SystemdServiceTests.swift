import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// What systemd sees of convoy: the unit and what scripts/install lays out (checked by `systemd-analyze verify`),
/// the readiness protocol (READY=1 only once the plugin socket answers; STOPPING=1 at SIGTERM), and the daemon's
/// configuration file with flags winning over it. systemd itself is not PID 1 here, so no unit is started.
final class SystemdServiceTests: XCTestCase {
    var daemon: DaemonHarness!

    override func setUpWithError() throws {
        daemon = try DaemonHarness()
    }

    override func tearDown() {
        daemon.cleanUp()
    }

    static var repository: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// A receiver of sd_notify datagrams that, at READY=1, calls Plugin.Activate on the plugin socket at once and
    /// records whether it answered: readiness must mean the plugin is there.
    static let receiver = """
        import socket, sys, time
        notify, plugin, out = sys.argv[1], sys.argv[2], sys.argv[3]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(notify); s.settimeout(60)
        with open(out, "w", buffering=1) as log:
            while True:
                message = s.recv(4096).decode()
                log.write(message.replace("\\n", " ") + "\\n")
                if "READY=1" in message:
                    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.settimeout(5); c.connect(plugin)
                    c.sendall(b"POST /Plugin.Activate HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 2\\r\\n\\r\\n{}")
                    reply = c.recv(4096).decode(errors="replace")
                    log.write("ACTIVATE " + reply.split("\\r\\n")[0] + "\\n")
                if "STOPPING=1" in message:
                    break
        """

    func testReadinessIsToldOnceThePluginAnswersAndTheStopIsToo() throws {
        let notify = daemon.directory + "/notify.sock"
        let out = daemon.directory + "/notify.log"
        let receiver = Process()
        receiver.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        receiver.arguments = ["python3", "-c", Self.receiver, notify, daemon.pluginSocket, out]
        try receiver.run()
        defer { if receiver.isRunning { receiver.terminate() } }
        let bound = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: notify) && Date() < bound { usleep(20_000) }
        daemon.environment = ["NOTIFY_SOCKET": notify]
        try daemon.start()
        XCTAssertTrue(waitFor(out, containing: "ACTIVATE"), (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.first, "READY=1 STATUS=serving \(daemon.pluginSocket)")
        XCTAssertEqual(lines.dropFirst().first, "ACTIVATE HTTP/1.1 200 OK", "the plugin answered at READY=1")
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertTrue(waitFor(out, containing: "STOPPING=1"))
    }

    func testTheConfigurationFileIsReadAndFlagsWin() throws {
        let port = try MetricsScrape.freePort()
        let volumes = daemon.directory + "/elsewhere"
        try FileManager.default.createDirectory(atPath: volumes, withIntermediateDirectories: true)
        let settings: [String: Any] = [
            "root": daemon.directory + "/not-this-root",  // --root from the harness wins
            "metrics-address": "127.0.0.1:\(port)",
            "driver-opts": ["vfs.path": volumes],
            "ignore-docker-delete": true,
            "hydration-pause": 0.5,
        ]
        try JSONSerialization.data(withJSONObject: settings).write(to: URL(fileURLWithPath: daemon.configFile))
        try daemon.start()
        let info = try daemon.cli(["info"]).stdout
        XCTAssertTrue(info.contains(daemon.root), info)
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.directory + "/not-this-root"))
        XCTAssertEqual(try daemon.cli(["create", "configured"]).status, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: volumes + "/configured"), "vfs.path from the file")
        XCTAssertNotNil(try MetricsScrape.scrape("http://127.0.0.1:\(port)/metrics").value("convoy_volumes",
                                                                                            ["driver": "vfs"]))
        // ignore-docker-delete: Docker's Remove keeps the volume.
        try daemon.pluginOK("VolumeDriver.Remove", ["Name": "configured"])
        XCTAssertEqual(try daemon.cli(["inspect", "configured"]).status, 0)
    }

    func testAMistakeInTheFileStopsTheStartWithWhatToFix() throws {
        let cases: [(String, String)] = [
            (#"{"drviers": ["vfs"]}"#, #"unknown setting "drviers""#),
            (#"{"drivers": "vfs"}"#, #""drivers" must be a list of strings"#),
            (#"{"fuse-disk-cache": 1}"#, #""fuse-disk-cache" must be true or false"#),
            (#"{"metrics-address": "localhost"}"#, "--metrics-address: 'localhost' is neither HOST:PORT"),
            (#"{"s3-concurrency": 0}"#, "--s3-concurrency: 0 is not a whole number from 1 to 256"),
            ("{", "is not one JSON object of settings"),
        ]
        for (text, message) in cases {
            try Data(text.utf8).write(to: URL(fileURLWithPath: daemon.configFile))
            let result = try Command.run(DaemonHarness.binary, daemon.arguments, timeout: 30)
            XCTAssertEqual(result.status, 1, text)
            XCTAssertTrue(result.stderr.contains(message), "\(text): \(result.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.socket), "nothing served for \(text)")
        }
    }

    func testInstallLaysOutAUnitSystemdAccepts() throws {
        let staging = daemon.directory + "/staging"
        let install = try Command.run(Self.repository + "/scripts/install",
                                      ["--binary", DaemonHarness.binary, "--destdir", staging], timeout: 120)
        XCTAssertEqual(install.status, 0, install.stderr)
        let unit = staging + "/etc/systemd/system/convoy.service"
        let binary = staging + "/usr/local/bin/convoy"
        XCTAssertEqual(try mode(of: binary), 0o755)
        XCTAssertEqual(try mode(of: unit), 0o644)
        XCTAssertEqual(try mode(of: staging + "/etc/convoy/daemon.json"), 0o600, "it may name password files")
        let text = try String(contentsOfFile: unit, encoding: .utf8)
        for line in ["Type=notify", "Before=docker.service", "Restart=on-failure",
                     "ExecStart=/usr/local/bin/convoy daemon --config-file /etc/convoy/daemon.json"] {
            XCTAssertTrue(text.contains(line + "\n"), line)
        }
        // A second install keeps the configuration an operator edited.
        try Data(#"{"log-level": "debug"}"#.utf8).write(to: URL(fileURLWithPath: staging + "/etc/convoy/daemon.json"))
        XCTAssertEqual(try Command.run(Self.repository + "/scripts/install",
                                       ["--binary", DaemonHarness.binary, "--destdir", staging]).status, 0)
        XCTAssertEqual(try String(contentsOfFile: staging + "/etc/convoy/daemon.json", encoding: .utf8),
                       #"{"log-level": "debug"}"#)

        // systemd's own check, on the unit with its binary where this staging root has it (verify needs it to
        // exist); any warning counts as a failure, since verify exits 0 on some of them.
        let checked = daemon.directory + "/convoy.service"
        try text.replacingOccurrences(of: "ExecStart=/usr/local/bin/convoy", with: "ExecStart=" + binary)
            .write(toFile: checked, atomically: true, encoding: .utf8)
        let verify = try Command.run("/usr/bin/systemd-analyze", ["verify", checked], timeout: 60)
        XCTAssertEqual(verify.status, 0, verify.stderr)
        XCTAssertEqual(verify.stderr.trimmingCharacters(in: .whitespacesAndNewlines), "")
        // The check is real: a mistake in the unit is reported.
        try text.replacingOccurrences(of: "Type=notify", with: "Type=notifyy")
            .replacingOccurrences(of: "ExecStart=/usr/local/bin/convoy", with: "ExecStart=" + binary)
            .write(toFile: checked, atomically: true, encoding: .utf8)
        XCTAssertTrue(try Command.run("/usr/bin/systemd-analyze", ["verify", checked]).stderr.contains("notifyy"))
    }

    private func mode(of path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return ((attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1) & 0o7777
    }

    private func waitFor(_ path: String, containing text: String, seconds: Double = 30) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? String(contentsOfFile: path, encoding: .utf8))?.contains(text) == true { return true }
            usleep(50_000)
        }
        return false
    }
}
