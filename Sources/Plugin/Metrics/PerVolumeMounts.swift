import BackupFS
import Prometheus
import Synchronization

/// `--metrics-per-volume`: each lazy volume's backup mount counted under its own name too
/// (`convoy_lazy_volume_fuse_*{volume="..."}`), beside the per-kind totals. A volume's series go at the first
/// scrape after it stops hydrating (`prune`), so only hydrating volumes have them.
final class PerVolumeMounts: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let live = Mutex<[String: VolumeMountMetrics]>([:])

    init(_ metrics: DaemonMetrics) { registry = metrics.registry }

    /// The observer for volume `name`'s mount: its own series and `base` (the per-kind totals).
    func observer(for name: String, base: (any MountObserver)?) -> any MountObserver {
        let own = live.withLock { live in
            if let existing = live[name] { return existing }
            let made = VolumeMountMetrics(volume: name, registry: registry)
            live[name] = made
            return made
        }
        return ObserverPair(first: own, second: base)
    }

    /// Drops the series of volumes not in `names`.
    func prune(keeping names: Set<String>) {
        let gone = live.withLock { live in
            let gone = live.filter { !names.contains($0.key) }
            for name in gone.keys { live[name] = nil }
            return gone.values
        }
        for metrics in gone { metrics.unregister(from: registry) }
    }
}

/// One lazy volume's mount: reads, bytes, block cache hits and misses, fetch latency.
struct VolumeMountMetrics: MountObserver {
    let reads: Counter
    let readBytes: Counter
    let hits: Counter
    let misses: Counter
    let fetchLatency: DurationHistogram

    init(volume: String, registry: PrometheusCollectorRegistry) {
        let labels = [("volume", volume)]
        reads = registry.counter("convoy_lazy_volume_fuse_reads_total", labels: labels,
                                 help: "FUSE reads answered by a lazy volume's backup mount (--metrics-per-volume).")
        readBytes = registry.counter(
            "convoy_lazy_volume_fuse_read_bytes_total", labels: labels,
            help: "Bytes FUSE reads of a lazy volume's backup returned (--metrics-per-volume).")
        hits = registry.counter("convoy_lazy_volume_block_cache_hits_total", labels: labels,
                                help: "Blocks a lazy volume found in memory (--metrics-per-volume).")
        misses = registry.counter("convoy_lazy_volume_block_cache_misses_total", labels: labels,
                                  help: "Blocks a lazy volume did not find in memory (--metrics-per-volume).")
        fetchLatency = registry.durationHistogram(
            "convoy_lazy_volume_block_fetch_duration_seconds", labels: labels, buckets: DaemonMetrics.fetchBuckets,
            help: "Time to fetch, verify and decompress a block of a lazy volume (--metrics-per-volume).")
    }

    func served(bytes: Int, failed: Bool) {
        guard !failed else { return }
        reads.increment()
        readBytes.increment(by: Int64(bytes))
    }

    func lookedUp(hit: Bool) { (hit ? hits : misses).increment() }

    func fetched(bytes: Int, seconds: Double, failed: Bool) {
        if !failed { fetchLatency.record(.nanoseconds(Int64(seconds * 1e9))) }
    }

    func unregister(from registry: PrometheusCollectorRegistry) {
        [reads, readBytes, hits, misses].forEach(registry.unregisterCounter)
        registry.unregisterDurationHistogram(fetchLatency)
    }
}

/// Two observers told the same.
struct ObserverPair: MountObserver {
    let first: any MountObserver
    let second: (any MountObserver)?

    func served(bytes: Int, failed: Bool) {
        first.served(bytes: bytes, failed: failed)
        second?.served(bytes: bytes, failed: failed)
    }

    func lookedUp(hit: Bool) {
        first.lookedUp(hit: hit)
        second?.lookedUp(hit: hit)
    }

    func fetched(bytes: Int, seconds: Double, failed: Bool) {
        first.fetched(bytes: bytes, seconds: seconds, failed: failed)
        second?.fetched(bytes: bytes, seconds: seconds, failed: failed)
    }
}
