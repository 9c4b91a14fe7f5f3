import Foundation
import Prometheus
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The standard `process_*` metrics of Prometheus' client libraries, read from /proc/self at each scrape.
final class ProcessGauges: Sendable {
    /// CPU seconds already added to the counter (it only counts up, by what was spent since the last scrape).
    private let cpuCounted = Mutex<Double>(0)

    func update(_ registry: PrometheusCollectorRegistry) {
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
           let fields = Self.fields(ofStat: stat) {
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            let page = Double(sysconf(Int32(_SC_PAGESIZE)))
            // Fields counted from 1 after the command: 14 utime, 15 stime, 22 starttime, 23 vsize, 24 rss.
            if ticks > 0, let user = Double(fields[11]), let system = Double(fields[12]) {
                let total = (user + system) / ticks
                let added = cpuCounted.withLock { counted in
                    defer { counted = max(counted, total) }
                    return max(0, total - counted)
                }
                registry.counter("process_cpu_seconds_total", help: "User and system CPU time spent in seconds.")
                    .increment(by: added)
            }
            if let rss = Double(fields[21]) {
                registry.gauge("process_resident_memory_bytes", help: "Resident memory size.")
                    .set(rss * page)
            }
            if let virtual = Double(fields[20]) {
                registry.gauge("process_virtual_memory_bytes", help: "Virtual memory size.").set(virtual)
            }
            if ticks > 0, let started = Double(fields[19]), let boot = Self.bootTime() {
                registry.gauge("process_start_time_seconds",
                                   help: "Start time of the process since the epoch.").set(boot + started / ticks)
            }
        }
        if let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            registry.gauge("process_open_fds", help: "Open file descriptors.")
                .set(Double(descriptors.count))
        }
    }

    /// The fields after "(comm)" (which may hold spaces and parentheses), from field 3 (state) on.
    static func fields(ofStat stat: String) -> [Substring]? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 21 ? fields : nil
    }

    private static func bootTime() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}
