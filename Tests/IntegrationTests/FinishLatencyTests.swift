import ConvoyClient
import ConvoyTestSupport
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// While a lazy volume with many files is finished (its whole tree walked to remove overlayfs's traces), Docker's
/// Get and Mount / Unmount of other volumes must not wait behind it. `CONVOY_FINISH_FILES` files (10,000 by
/// default; the figure in bench/RELIABILITY.md uses more). The calls made during the finish: p95 ≤ 50 ms and none
/// over a second (a stall behind the finish would hold most of them); p99 is printed for the figure, where the
/// long run gives it enough calls to mean something.
final class FinishLatencyTests: XCTestCase {
    var daemon: DaemonHarness!

    override func setUpWithError() throws {
        daemon = try DaemonHarness()
        try daemon.start()
    }

    override func tearDown() {
        daemon.cleanUp()
    }

    func testOtherVolumesAnswerQuicklyWhileALargeLazyVolumeFinishes() throws {
        let files = Int(ProcessInfo.processInfo.environment["CONVOY_FINISH_FILES"] ?? "") ?? 10000
        XCTAssertEqual(try daemon.cli(["create", "source"]).status, 0)
        try Command.check("/usr/bin/python3", ["-c", """
            import os, sys
            root, count = sys.argv[1], int(sys.argv[2])
            for i in range(count):
                d = os.path.join(root, "d%04d" % (i // 500))
                if i % 500 == 0: os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, "f%07d" % i), "w") as f: f.write(str(i))
            """, daemon.root + "/vfs/source", String(files)], timeout: 3600)
        // A snapshot and a backup of the long run's million files outlast the CLI's usual minute.
        let long: TimeInterval = 3600
        XCTAssertEqual(try daemon.cli(["snapshot", "create", "source", "--name", "s1"], timeout: long).status, 0)
        let backup = try daemon.cli(["backup", "create", "s1", "--dest", "vfs://\(daemon.directory)/backups"],
                                    timeout: long)
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let url = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try daemon.cli(["create", "other"]).status, 0)
        XCTAssertEqual(try daemon.cli(["create", "lazy", "--backup", url, "--lazy"], timeout: long).status, 0)
        // Held mounted until hydrated, so the finish happens at the unmount below, while the calls are timed.
        let merged = try daemon.cli(["mount", "lazy"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try Command.check("/bin/sh", ["-c", "cd '\(merged)' && rm d0000/f0000000"])  // a whiteout to remove
        // Polled rather than `hydrate --wait`, whose CLI call a large volume's hydration outlasts.
        let hydrationStarted = Date()
        let hydrating = Date().addingTimeInterval(3 * 3600)
        while Date() < hydrating, (try? daemon.cli(["hydrate", "lazy"]).stdout.contains("\"complete\"")) != true {
            usleep(200_000)
        }
        XCTAssertTrue(try daemon.cli(["hydrate", "lazy"]).stdout.contains("\"complete\""), "hydration never ended")
        print(String(format: "hydration of %d files: %.0f s", files, Date().timeIntervalSince(hydrationStarted)))

        let finished = StopFlag()
        let samples = Samples()
        let socket = daemon.pluginSocket
        let sampler = Thread {
            let plugin = UnixHTTPClient(socketPath: socket, timeoutSeconds: 30)
            var index = 0
            while !finished.isSet {
                let id = "probe-\(index)"
                index += 1
                for (method, body) in [("VolumeDriver.Get", #"{"Name":"other"}"#),
                                       ("VolumeDriver.Mount", #"{"Name":"other","ID":"\#(id)"}"#),
                                       ("VolumeDriver.Unmount", #"{"Name":"other","ID":"\#(id)"}"#)] {
                    let started = Date()
                    let reply = try? plugin.request("POST", "/" + method, body: Array(body.utf8))
                    samples.add(Date().timeIntervalSince(started), ok: reply?.status == 200, method: method,
                                at: started)
                }
            }
        }
        sampler.start()
        usleep(200_000)
        samples.reset()  // only calls made while the finish runs
        let started = Date()
        let unmounted = try daemon.cli(["umount", "lazy"], timeout: long)
        let deadline = Date().addingTimeInterval(3600)
        while Date() < deadline, (try? daemon.cli(["hydrate", "lazy"]).stdout.contains("\"local\"")) != true {
            usleep(50_000)
        }
        let finishSeconds = Date().timeIntervalSince(started)
        finished.set()
        while sampler.isExecuting { usleep(1000) }
        XCTAssertEqual(unmounted.status, 0, unmounted.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.root + "/vfs/lazy/d0000/f0000000"))
        let (all, failures) = samples.snapshot
        let sorted = all.sorted()
        guard !sorted.isEmpty else { return XCTFail("no call was made during the finish") }
        let p95 = sorted[min(sorted.count - 1, sorted.count * 95 / 100)]
        let p99 = sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
        XCTAssertEqual(failures, 0, "calls on another volume failed during the finish")
        XCTAssertGreaterThanOrEqual(sorted.count, 20, "too few calls during the finish to judge")
        XCTAssertLessThanOrEqual(p95, 0.050, "p95 of Get / Mount / Unmount on another volume during the finish")
        XCTAssertLessThan(sorted.last ?? 0, 1.0, "a call on another volume waited behind the finish")
        for slow in samples.slow {
            print(String(format: "slow call: %@ took %.0f ms, %.1f s into the finish", slow.method,
                         slow.seconds * 1000, slow.at.timeIntervalSince(started)))
        }
        if !samples.slow.isEmpty {
            print("the daemon's log, as the finish went:\n" + daemon.log_().split(separator: "\n").suffix(60)
                .joined(separator: "\n"))
        }
        print(String(format: "finish of a lazy volume of %d files: %.1f s; %d calls on another volume meanwhile, "
                     + "p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms", files, finishSeconds, sorted.count,
                     sorted[sorted.count / 2] * 1000, p95 * 1000, p99 * 1000, (sorted.last ?? 0) * 1000))
    }
}

private final class Samples: @unchecked Sendable {
    struct Slow { var method: String; var seconds: Double; var at: Date }
    private let lock = NSLock()
    private var seconds: [Double] = []
    private var failures = 0
    private var slowCalls: [Slow] = []

    func add(_ value: Double, ok: Bool, method: String, at started: Date) {
        lock.withLock {
            seconds.append(value)
            if !ok { failures += 1 }
            if value > 0.25 { slowCalls.append(Slow(method: method, seconds: value, at: started)) }
        }
    }

    func reset() { lock.withLock { seconds = []; failures = 0; slowCalls = [] } }
    var snapshot: ([Double], Int) { lock.withLock { (seconds, failures) } }
    /// Calls over 250 ms, to find what they waited for.
    var slow: [Slow] { lock.withLock { slowCalls } }
}
