import ArgumentParser
import ConvoyClient
import Foundation
import Synchronization

/// Load generator for convoy's Docker plugin socket: Get and List throughput over keep-alive connections from
/// several threads, and Mount+Unmount latency percentiles from one client (Docker mounts one at a time).
@main
struct LoadGenerator: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "convoy-bench")

    @Option(help: "The plugin socket of a running daemon.") var pluginSocket: String
    @Option(help: "Connections (one thread each) for the throughput runs.") var connections = 4
    @Option(help: "Seconds per throughput run.") var seconds = 5.0
    @Option(help: "Mount+Unmount pairs for the latency run.") var mounts = 2000
    @Option(help: "Volumes to create before measuring (List returns them all).") var volumes = 100

    func run() throws {
        let setup = UnixHTTPClient(socketPath: pluginSocket)
        for index in 0..<volumes {
            try check(setup.request("POST", "/VolumeDriver.Create", body: body(["Name": "bench-\(index)"])))
        }
        let get = try throughput(path: "/VolumeDriver.Get", body: body(["Name": "bench-0"]))
        let list = try throughput(path: "/VolumeDriver.List", body: Array("{}".utf8))
        let (mountLatency, unmountLatency) = try mountLatencies(setup)
        print("| operation | result |")
        print("|---|---|")
        print(String(format: "| Get (%d connections, %.0f s) | %.0f req/s |", connections, seconds, get))
        print(String(format: "| List of %d volumes (%d connections) | %.0f req/s |", volumes, connections, list))
        print(String(format: "| Mount p50 / p99 (first reference, %d runs) | %.3f ms / %.3f ms |", mounts,
                     percentile(mountLatency, 0.50), percentile(mountLatency, 0.99)))
        print(String(format: "| Unmount p50 / p99 (last reference) | %.3f ms / %.3f ms |",
                     percentile(unmountLatency, 0.50), percentile(unmountLatency, 0.99)))
        for index in 0..<volumes {
            try check(setup.request("POST", "/VolumeDriver.Remove", body: body(["Name": "bench-\(index)"])))
        }
    }

    func body(_ fields: [String: String]) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: fields)) ?? Data())
    }

    func check(_ response: UnixHTTPClient.Response) throws {
        let text = response.text
        guard response.status == 200, !text.contains("\"Err\":\"") || text.contains("\"Err\":\"\"") else {
            throw ValidationError("daemon answered \(response.status): \(text)")
        }
    }

    /// Requests per second over all connections.
    func throughput(path: String, body: [UInt8]) throws -> Double {
        let tally = Tally()
        let deadline = Date().addingTimeInterval(seconds)
        let started = Date()
        let socket = pluginSocket
        DispatchQueue.concurrentPerform(iterations: connections) { _ in
            let client = UnixHTTPClient(socketPath: socket)
            var count = 0
            var failed = 0
            while Date() < deadline {
                for _ in 0..<50 {
                    guard let response = try? client.request("POST", path, body: body), response.status == 200 else {
                        failed += 1
                        continue
                    }
                    count += 1
                }
            }
            tally.add(count: count, failed: failed)
        }
        let elapsed = Date().timeIntervalSince(started)
        let (count, failed) = tally.totals
        guard failed == 0 else { throw ValidationError("\(failed) requests to \(path) failed") }
        return Double(count) / elapsed
    }

    func mountLatencies(_ client: UnixHTTPClient) throws -> ([Double], [Double]) {
        var mountTimes: [Double] = []
        var unmountTimes: [Double] = []
        for index in 0..<mounts {
            let request = body(["Name": "bench-\(index % volumes)", "ID": "bench-id-\(index)"])
            let t0 = DispatchTime.now().uptimeNanoseconds
            try check(client.request("POST", "/VolumeDriver.Mount", body: request))
            let t1 = DispatchTime.now().uptimeNanoseconds
            try check(client.request("POST", "/VolumeDriver.Unmount", body: request))
            let t2 = DispatchTime.now().uptimeNanoseconds
            mountTimes.append(Double(t1 - t0) / 1e6)
            unmountTimes.append(Double(t2 - t1) / 1e6)
        }
        return (mountTimes, unmountTimes)
    }

    func percentile(_ values: [Double], _ fraction: Double) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
    }
}

/// Request counts summed over the worker threads.
final class Tally: Sendable {
    private let state = Mutex((count: 0, failed: 0))

    func add(count: Int, failed: Int) {
        state.withLock { $0.count += count; $0.failed += failed }
    }

    var totals: (Int, Int) { state.withLock { ($0.count, $0.failed) } }
}
