import BackupFS
import ConvoyCore
import Prometheus

/// The daemon's Prometheus metrics: one registry, passed to what reports into it (no global metrics system).
/// Counters and histograms move as work happens; gauges of state (volumes, references, lazy volumes, the process)
/// are set when scraped (`ScrapeGauges`). Labels take bounded values only: API, route pattern, driver, job kind,
/// mount kind, error kind; never a volume name.
public final class DaemonMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    /// Request latency buckets: most answers take milliseconds, a Docker Create with a restore takes minutes.
    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(2),
        .seconds(10), .seconds(60), .seconds(300),
    ]
    /// Block fetch latency buckets: a page-cache hit takes tens of microseconds, an S3 round trip tens of ms.
    static let fetchBuckets: [Duration] = [
        .microseconds(100), .microseconds(500), .milliseconds(2), .milliseconds(10), .milliseconds(50),
        .milliseconds(250), .seconds(1), .seconds(5),
    ]
    static let jobBuckets: [Duration] = [
        .milliseconds(100), .seconds(1), .seconds(10), .seconds(60), .seconds(600), .seconds(3600), .seconds(21600),
    ]

    public init() {
        // Series that may stay at zero for long are there from the start, so a dashboard shows 0, not "no data".
        for lease in ["host", "replica", "ebs"] {
            for takeover in [false, true] { _ = leaseCounter(lease, takeover: takeover) }
        }
    }

    // MARK: API requests

    /// One answered request of `api` ("docker", "client", "metrics") on route `endpoint` (its pattern).
    func request(api: String, endpoint: String, method: String, status: Int, duration: Duration) {
        let labels = [("api", api), ("endpoint", endpoint), ("method", method), ("code", "\(status)")]
        registry.counter("convoy_api_requests_total", labels: labels,
                             help: "Requests answered, by API, route, method and HTTP status.").increment()
        registry.durationHistogram(
            "convoy_api_request_duration_seconds", labels: [("api", api), ("endpoint", endpoint)],
            buckets: Self.latencyBuckets, help: "Time to answer a request, by API and route.").record(duration)
    }

    /// A request that failed with `kind` (Docker's plugin API answers errors with status 200 and an Err field, so
    /// status codes alone do not count them).
    func failed(api: String, kind: ConvoyError.Kind) {
        registry.counter("convoy_errors_total", labels: [("api", api), ("kind", kind.rawValue)],
                             help: "Requests that failed, by API and error kind.").increment()
    }

    // MARK: Drivers

    /// One driver operation on a volume (create, delete, mount, unmount) and how long it took.
    func driverOperation(driver: String, operation: String, duration: Duration, failed: Bool) {
        let labels = [("driver", driver), ("operation", operation)]
        registry.durationHistogram("convoy_driver_operation_duration_seconds", labels: labels,
                                   buckets: Self.latencyBuckets,
                                   help: "Time a driver took to create, delete, mount or unmount a volume.")
            .record(duration)
        if failed {
            registry.counter("convoy_driver_operation_errors_total", labels: labels,
                             help: "Driver operations on volumes that failed, by driver and operation.").increment()
        }
    }

    // MARK: Jobs

    func jobStarted(kind: String) {
        registry.counter("convoy_jobs_started_total", labels: [("kind", kind)],
                             help: "Jobs started, by kind.").increment()
    }

    /// A job's end: its outcome, duration and bytes; a backup's bytes read, logical and newly stored (the store's
    /// dedup ratio is logical over stored).
    func jobEnded(kind: String, succeeded: Bool, duration: Duration, bytesDone: UInt64, result: [String: String]?) {
        let outcome = succeeded ? "succeeded" : "failed"
        registry.counter("convoy_jobs_total", labels: [("kind", kind), ("outcome", outcome)],
                             help: "Jobs ended, by kind and outcome.").increment()
        registry.durationHistogram("convoy_job_duration_seconds", labels: [("kind", kind)],
                                       buckets: Self.jobBuckets, help: "Time jobs took, by kind.").record(duration)
        registry.counter("convoy_job_bytes_total", labels: [("kind", kind)],
                             help: "Bytes jobs processed (their progress at the end), by kind.")
            .increment(by: Int64(clamping: bytesDone))
        guard succeeded, let result else { return }
        let backupBytes = [
            ("BytesRead", "convoy_backup_read_bytes_total", "Bytes backups read from their volumes."),
            ("Bytes", "convoy_backup_logical_bytes_total", "Bytes of data the backups made hold."),
            ("BytesStored", "convoy_backup_stored_bytes_total",
             "Bytes backups added to their stores (compressed, new blocks only)."),
        ]
        for (key, name, help) in backupBytes {
            guard let value = result[key].flatMap(Int64.init) else { continue }
            registry.counter(name, help: help).increment(by: value)
        }
    }

    // MARK: Leases

    /// A lease taken or renewed (`takeover`: taken from a host whose lease had expired), of kind "host", "replica"
    /// or "ebs".
    func lease(_ lease: String, takeover: Bool) { leaseCounter(lease, takeover: takeover).increment() }

    private func leaseCounter(_ lease: String, takeover: Bool) -> Counter {
        let name = takeover ? "convoy_lease_takeovers_total" : "convoy_lease_renewals_total"
        let help = takeover ? "Leases taken over from a host whose lease expired, by lease kind."
            : "Leases taken or renewed by this host, by lease kind."
        return registry.counter(name, labels: [("lease", lease)], help: help)
    }

    // MARK: Mounted backups

    /// The observer for mounts of one kind ("lazy" volumes, "browse" mounts).
    func mounts(_ kind: String) -> any MountObserver { MountMetrics(kind: kind, registry: registry) }

    /// The text format (0.0.4) of every metric.
    func exposition() -> [UInt8] { registry.emitToBuffer() }
}

/// Counters of the mounts of one kind, made once (a read does not look names up in the registry).
struct MountMetrics: MountObserver {
    let reads: Counter
    let readErrors: Counter
    let readBytes: Counter
    let hits: Counter
    let misses: Counter
    let fetchedBytes: Counter
    let fetchErrors: Counter
    let fetchLatency: DurationHistogram

    init(kind: String, registry: PrometheusCollectorRegistry) {
        let labels = [("mount", kind)]
        reads = registry.counter("convoy_fuse_reads_total", labels: labels,
                                     help: "FUSE reads answered by mounted backups, by mount kind.")
        readErrors = registry.counter("convoy_fuse_read_errors_total", labels: labels,
                                          help: "FUSE reads answered with EIO, by mount kind.")
        readBytes = registry.counter("convoy_fuse_read_bytes_total", labels: labels,
                                         help: "Bytes FUSE reads returned, by mount kind.")
        hits = registry.counter("convoy_fuse_block_cache_hits_total", labels: labels,
                                    help: "Blocks found decompressed in memory, by mount kind.")
        misses = registry.counter("convoy_fuse_block_cache_misses_total", labels: labels,
                                      help: "Blocks not in memory (fetched, or waited for), by mount kind.")
        fetchedBytes = registry.counter("convoy_fuse_block_fetched_bytes_total", labels: labels,
                                            help: "Plain bytes of blocks fetched (disk cache or store), by mount kind.")
        fetchErrors = registry.counter("convoy_fuse_block_fetch_errors_total", labels: labels,
                                           help: "Block fetches that failed, by mount kind.")
        fetchLatency = registry.durationHistogram(
            "convoy_fuse_block_fetch_duration_seconds", labels: labels, buckets: DaemonMetrics.fetchBuckets,
            help: "Time to fetch, verify and decompress a block, by mount kind.")
    }

    func served(bytes: Int, failed: Bool) {
        if failed { readErrors.increment(); return }
        reads.increment()
        readBytes.increment(by: Int64(bytes))
    }

    func lookedUp(hit: Bool) { (hit ? hits : misses).increment() }

    func fetched(bytes: Int, seconds: Double, failed: Bool) {
        if failed { fetchErrors.increment(); return }
        fetchedBytes.increment(by: Int64(bytes))
        fetchLatency.record(.nanoseconds(Int64(seconds * 1e9)))
    }
}

/// Metrics by their whole name (`convoy_jobs_total`): the descriptor's parts are not ours to split.
extension PrometheusCollectorRegistry {
    func counter(_ name: String, labels: [(String, String)] = [], help: String) -> Counter {
        makeCounter(descriptor: .init(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    func gauge(_ name: String, labels: [(String, String)] = [], help: String) -> Gauge {
        makeGauge(descriptor: .init(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    func durationHistogram(_ name: String, labels: [(String, String)] = [], buckets: [Duration],
                           help: String) -> DurationHistogram {
        makeDurationHistogram(descriptor: .init(metricName: name, unitName: "", helpText: help), labels: labels,
                              buckets: buckets)
    }
}
