import ConvoyCore
import Foundation
import Prometheus
import Synchronization

/// Gauges of state, set from the daemon's own records when Prometheus scrapes (cheaper than keeping them current
/// on every change, and never out of step): volumes, mount references, lazy volumes and their hydration, browse
/// mounts, running jobs, the process. A label value seen once is set again at every scrape, to 0 when it has
/// nothing, so a series does not stay at its last value.
final class ScrapeGauges: Sendable {
    let metrics: DaemonMetrics
    let store: StateStore
    let drivers: [String]
    let jobs: JobManager
    let lazy: LazyVolumes
    let browser: BackupBrowser
    /// `--metrics-per-volume`: each hydrating lazy volume's progress as series labelled with its name.
    let perVolume: PerVolumeMounts?
    private let jobKindsSeen = Mutex<Set<String>>([])
    /// The per-volume gauges served at the last scrape, so a volume that stopped hydrating loses its series.
    private let volumeGauges = Mutex<[String: [Gauge]]>([:])
    private let process = ProcessGauges()

    init(metrics: DaemonMetrics, store: StateStore, drivers: [String], jobs: JobManager, lazy: LazyVolumes,
         browser: BackupBrowser, perVolume: PerVolumeMounts? = nil) {
        self.perVolume = perVolume
        self.metrics = metrics
        self.store = store
        self.drivers = drivers
        self.jobs = jobs
        self.lazy = lazy
        self.browser = browser
    }

    func update() async {
        let registry = metrics.registry
        let records = (try? store.volumes()) ?? []
        for driver in drivers {
            let own = records.filter { $0.driver == driver && $0.state == .ready }
            let labels = [("driver", driver)]
            registry.gauge("convoy_volumes", labels: labels, help: "Volumes on this host, by driver.")
                .set(Double(own.count))
            registry.gauge("convoy_volumes_mounted", labels: labels,
                               help: "Volumes with at least one mount reference, by driver.")
                .set(Double(own.filter { !$0.references.isEmpty }.count))
            registry.gauge("convoy_mount_references", labels: labels,
                               help: "Mount references held (Docker mounts, CLI and CSI publishes), by driver.")
                .set(Double(own.reduce(0) { $0 + $1.references.count }))
        }
        let hydration = await lazy.hydrationTotals()
        registry.gauge("convoy_lazy_volumes", help: "Lazily restored volumes still hydrating.")
            .set(Double(hydration.volumes))
        registry.gauge("convoy_lazy_hydrated_bytes", help: "Bytes the hydrating lazy volumes have copied.")
            .set(Double(hydration.bytesDone))
        registry.gauge("convoy_lazy_hydration_total_bytes",
                           help: "Bytes the hydrating lazy volumes copy in all.")
            .set(Double(hydration.bytesTotal))
        if let perVolume {
            let hydrating = await lazy.hydrationByVolume()
            updateVolumes(hydrating)
            perVolume.prune(keeping: Set(hydrating.keys))
        }
        registry.gauge("convoy_browse_mounts", help: "Backups mounted for browsing.")
            .set(Double(await browser.list().count))
        let running = await jobs.runningKinds()
        let kinds = jobKindsSeen.withLock { seen in
            seen.formUnion(running.keys)
            return seen
        }
        for kind in kinds {
            registry.gauge("convoy_jobs_running", labels: [("kind", kind)], help: "Jobs running, by kind.")
                .set(Double(running[kind] ?? 0))
        }
        process.update(registry)
    }

    private func updateVolumes(_ hydrating: [String: (done: UInt64, total: UInt64)]) {
        let registry = metrics.registry
        volumeGauges.withLock { served in
            for (name, gauges) in served where hydrating[name] == nil {
                gauges.forEach(registry.unregisterGauge)
                served[name] = nil
            }
            for (name, progress) in hydrating {
                let labels = [("volume", name)]
                let done = registry.gauge("convoy_lazy_volume_hydrated_bytes", labels: labels,
                                          help: "Bytes a hydrating lazy volume has copied (--metrics-per-volume).")
                let total = registry.gauge("convoy_lazy_volume_hydration_total_bytes", labels: labels,
                                           help: "Bytes a hydrating lazy volume copies in all (--metrics-per-volume).")
                done.set(Double(progress.done))
                total.set(Double(progress.total))
                served[name] = [done, total]
            }
        }
    }
}
