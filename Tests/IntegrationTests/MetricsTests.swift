import Foundation
import XCTest

/// `convoy daemon --metrics-address`: Prometheus' text format, read by prometheus_client's parser, whose values
/// move with the work the daemon does (Docker calls, references, backups and their dedup, browse and lazy reads).
final class MetricsTests: XCTestCase {
    var daemon: DaemonHarness!
    var url = ""

    override func setUpWithError() throws {
        daemon = try DaemonHarness()
        let port = try MetricsScrape.freePort()
        url = "http://127.0.0.1:\(port)/metrics"
        // A hydration slowed down, so the lazy volume below is still hydrating when scraped.
        daemon.extraArguments = ["--metrics-address", "127.0.0.1:\(port)", "--browse-root", daemon.directory,
                                 "--hydration-pause", "2", "--metrics-per-volume"]
        try daemon.start()
    }

    override func tearDown() {
        daemon.cleanUp()
    }

    func testValuesMoveWithTheWorkDone() throws {
        let idle = try MetricsScrape.scrape(url)
        XCTAssertEqual(idle.value("convoy_volumes", ["driver": "vfs"]), 0)
        XCTAssertEqual(idle.types["convoy_api_requests"], "counter")
        XCTAssertEqual(idle.types["convoy_fuse_block_fetch_duration_seconds"], "histogram")
        XCTAssertEqual(idle.types["convoy_volumes"], "gauge")
        XCTAssertGreaterThan(idle.count("process_resident_memory_bytes"), Double(1 << 20))
        XCTAssertGreaterThan(idle.count("process_open_fds"), 3)

        // Docker's calls: a volume created and mounted by one container, a Get of a volume that is not there.
        try daemon.pluginOK("VolumeDriver.Create", ["Name": "metered"])
        try daemon.pluginOK("VolumeDriver.Mount", ["Name": "metered", "ID": "container-1"])
        _ = try daemon.pluginErr("VolumeDriver.Get", #"{"Name": "absent"}"#)
        let mounted = try MetricsScrape.scrape(url)
        XCTAssertEqual(mounted.value("convoy_volumes", ["driver": "vfs"]), 1)
        XCTAssertEqual(mounted.value("convoy_volumes_mounted", ["driver": "vfs"]), 1)
        XCTAssertEqual(mounted.value("convoy_mount_references", ["driver": "vfs"]), 1)
        let create = ["api": "docker", "endpoint": "/VolumeDriver.Create", "method": "POST", "code": "200"]
        XCTAssertEqual(mounted.value("convoy_api_requests_total", create), 1)
        XCTAssertEqual(mounted.value("convoy_api_request_duration_seconds_count",
                                     ["api": "docker", "endpoint": "/VolumeDriver.Mount"]), 1)
        XCTAssertEqual(mounted.value("convoy_errors_total", ["api": "docker", "kind": "notFound"]), 1)
        XCTAssertEqual(mounted.value("convoy_driver_operation_duration_seconds_count",
                                     ["driver": "vfs", "operation": "mount"]), 1)
        XCTAssertEqual(mounted.value("convoy_driver_operation_duration_seconds_count",
                                     ["driver": "vfs", "operation": "create"]), 1)

        // Two backups of the same data: the second reads nothing new and stores nothing new.
        let data = daemon.root + "/vfs/metered"
        let random = (0..<(3 << 20)).map { _ in UInt8.random(in: 0...255) }
        try Data(random).write(to: URL(fileURLWithPath: data + "/random.bin"))
        try String(repeating: "a line of a log that compresses well\n", count: 60_000)
            .write(toFile: data + "/text.log", atomically: false, encoding: .utf8)
        let logical = Double(random.count + 37 * 60_000)
        let first = try backup("metered", snapshot: "s1")
        let once = try MetricsScrape.scrape(url)
        XCTAssertEqual(once.value("convoy_jobs_total", ["kind": "backup create", "outcome": "succeeded"]), 1)
        XCTAssertEqual(once.value("convoy_backup_logical_bytes_total"), logical)
        XCTAssertEqual(once.value("convoy_backup_read_bytes_total"), logical)
        let stored = once.count("convoy_backup_stored_bytes_total")
        XCTAssertGreaterThan(stored, Double(random.count), "random data does not compress")
        XCTAssertLessThan(stored, logical, "the log compresses")
        _ = try backup("metered", snapshot: "s2")
        let twice = try MetricsScrape.scrape(url)
        XCTAssertEqual(twice.value("convoy_jobs_total", ["kind": "backup create", "outcome": "succeeded"]), 2)
        XCTAssertEqual(twice.value("convoy_backup_logical_bytes_total"), 2 * logical)
        XCTAssertEqual(twice.value("convoy_backup_stored_bytes_total"), stored, "nothing new stored")
        XCTAssertEqual(twice.value("convoy_job_duration_seconds_count", ["kind": "snapshot create"]), 2)

        // A lazy volume, hydrating slowly: counted, and its reads counted as lazy ones. Before the browse mount:
        // mounts share one block memory, and a browse mount brings the blocks packed beside those it reads.
        XCTAssertEqual(try daemon.cli(["create", "restored", "--backup", first, "--lazy"]).status, 0)
        let mountpoint = try daemon.cli(["mount", "restored"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: mountpoint + "/text.log")).count, 37 * 60_000)
        let lazy = try MetricsScrape.scrape(url)
        XCTAssertEqual(lazy.value("convoy_lazy_volumes"), 1)
        XCTAssertEqual(lazy.value("convoy_lazy_hydration_total_bytes"), logical)
        XCTAssertEqual(lazy.value("convoy_lazy_volume_hydration_total_bytes", ["volume": "restored"]), logical)
        XCTAssertNotNil(lazy.value("convoy_lazy_volume_hydrated_bytes", ["volume": "restored"]))
        XCTAssertGreaterThanOrEqual(lazy.count("convoy_lazy_volume_fuse_read_bytes_total", ["volume": "restored"]),
                                    Double(37 * 60_000))
        XCTAssertGreaterThan(lazy.count("convoy_lazy_volume_block_fetch_duration_seconds_count",
                                        ["volume": "restored"]), 0)
        XCTAssertGreaterThan(lazy.count("convoy_fuse_read_bytes_total", ["mount": "lazy"]), 0)
        XCTAssertEqual(lazy.value("convoy_volumes", ["driver": "vfs"]), 2)
        XCTAssertEqual(lazy.value("convoy_mount_references", ["driver": "vfs"]), 2)

        // A backup browsed: the FUSE reads, the blocks fetched and their latency.
        let target = daemon.directory + "/browse"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        XCTAssertEqual(try daemon.cli(["backup", "mount", first, target]).status, 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: target + "/random.bin")), Data(random))
        let browsed = try MetricsScrape.scrape(url)
        XCTAssertEqual(browsed.value("convoy_browse_mounts"), 1)
        XCTAssertGreaterThan(browsed.count("convoy_fuse_reads_total", ["mount": "browse"]), 0)
        XCTAssertGreaterThanOrEqual(browsed.count("convoy_fuse_read_bytes_total", ["mount": "browse"]),
                                    Double(random.count))
        // Not all of random.bin: the lazy volume's reads (their read-ahead runs into the next file) may have brought
        // some of its blocks into the block memory the mounts share already.
        XCTAssertGreaterThan(browsed.count("convoy_fuse_block_fetched_bytes_total", ["mount": "browse"]), 0)
        XCTAssertGreaterThan(browsed.count("convoy_fuse_block_fetch_duration_seconds_count", ["mount": "browse"]), 0)
        XCTAssertEqual(browsed.count("convoy_fuse_read_errors_total", ["mount": "browse"]), 0)
        XCTAssertEqual(try daemon.cli(["backup", "umount", target]).status, 0)

        // Unmounted: the references go, and the scrapes themselves were counted. A lazy volume deleted loses its
        // per-volume series.
        try daemon.pluginOK("VolumeDriver.Unmount", ["Name": "metered", "ID": "container-1"])
        XCTAssertEqual(try daemon.cli(["umount", "restored"]).status, 0)
        XCTAssertEqual(try daemon.cli(["delete", "restored"]).status, 0)
        let after = try MetricsScrape.scrape(url)
        XCTAssertEqual(after.value("convoy_volumes_mounted", ["driver": "vfs"]), 0)
        XCTAssertNil(after.value("convoy_lazy_volume_hydrated_bytes", ["volume": "restored"]))
        XCTAssertNil(after.value("convoy_lazy_volume_fuse_reads_total", ["volume": "restored"]))
        XCTAssertEqual(after.value("convoy_driver_operation_duration_seconds_count",
                                   ["driver": "vfs", "operation": "unmount"]), 2)
        XCTAssertEqual(after.value("convoy_api_requests_total",
                                   ["api": "metrics", "endpoint": "/metrics", "method": "GET", "code": "200"]), 6)
        XCTAssertGreaterThan(after.count("process_cpu_seconds_total"), 0)

        // Every metric the Grafana dashboard charts is one the daemon serves.
        let dashboard = try String(contentsOfFile: SystemdServiceTests.repository + "/contrib/grafana/convoy.json",
                                   encoding: .utf8)
        let charted = Set(dashboard.matches(of: /(convoy|process)_[a-z_]+/).map { String($0.output.0) })
        let served = Set(after.samples.keys.map { String($0.prefix { $0 != "{" }) })
        XCTAssertGreaterThan(charted.count, 20)
        XCTAssertEqual(charted.subtracting(served), [], "charted but not served")
    }

    /// A snapshot and its backup to the test's destination; returns the backup's URL.
    private func backup(_ volume: String, snapshot: String) throws -> String {
        XCTAssertEqual(try daemon.cli(["snapshot", "create", volume, "--name", snapshot]).status, 0)
        let made = try daemon.cli(["backup", "create", snapshot, "--dest", "vfs://\(daemon.directory)/backups"])
        XCTAssertEqual(made.status, 0, made.stderr)
        return made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
