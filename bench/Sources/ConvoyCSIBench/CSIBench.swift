import ArgumentParser
import CSIProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
#if canImport(Glibc)
import Glibc
#endif

/// CSI figures against a running daemon, as kubelet and the sidecars drive it: NodePublish latency, the rate of
/// NodeGetVolumeStats (kubelet polls it for every volume of every node), and the time until a pod could start on a
/// volume restored from a snapshot, lazily against in full.
@main
struct CSIBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "convoy-csi-bench")

    @Option(help: "The daemon's CSI socket.") var csiSocket: String
    @Option(help: "A directory for staging and target paths (kubelet's, here).") var work: String
    @Option(help: "Where snapshots go (a backup URL).") var dest: String
    @Option(help: "NodePublish + NodeUnpublish pairs for the latency run.") var publishes = 1000
    @Option(help: "Concurrent callers of NodeGetVolumeStats.") var statsCallers = 8
    @Option(help: "Seconds of NodeGetVolumeStats.") var statsSeconds = 5.0
    @Option(help: "GiB written into the snapshotted volume.") var gib = 4

    func run() async throws {
        let transport = try HTTP2ClientTransport.Posix(target: .unixDomainSocket(path: csiSocket),
                                                       transportSecurity: .plaintext)
        try await withGRPCClient(transport: transport) { client in
            let calls = CSICalls(client)
            try await calls.create("bench-pub")
            let staging = work + "/staging/bench-pub"
            try await calls.stage("bench-pub", staging)
            let (publish, unpublish) = try await publishLatencies(calls, staging: staging)
            let rate = try await statsRate(calls, path: staging)
            print("| measure | result |")
            print("|---|---|")
            print(String(format: "| NodePublish p50 / p99 (vfs, %d runs) | %.2f ms / %.2f ms |", publishes,
                         percentile(publish, 0.5), percentile(publish, 0.99)))
            print(String(format: "| NodeUnpublish p50 / p99 | %.2f ms / %.2f ms |",
                         percentile(unpublish, 0.5), percentile(unpublish, 0.99)))
            print(String(format: "| NodeGetVolumeStats (%d callers, %.0f s) | %.0f req/s |", statsCallers,
                         statsSeconds, rate))
            try await calls.unstage("bench-pub", staging)
            try await calls.delete("bench-pub")
            try await restoreFigures(calls)
        }
    }

    func publishLatencies(_ calls: CSICalls, staging: String) async throws -> ([Double], [Double]) {
        var publish: [Double] = []
        var unpublish: [Double] = []
        for index in 0..<publishes {
            let target = work + "/pods/\(index)/volume"
            let started = Date()
            try await calls.publish("bench-pub", staging: staging, target: target)
            publish.append(Date().timeIntervalSince(started) * 1000)
            let unpublished = Date()
            try await calls.unpublish("bench-pub", target: target)
            unpublish.append(Date().timeIntervalSince(unpublished) * 1000)
        }
        return (publish, unpublish)
    }

    func statsRate(_ calls: CSICalls, path: String) async throws -> Double {
        let deadline = Date().addingTimeInterval(statsSeconds)
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<statsCallers {
                group.addTask {
                    var count = 0
                    while Date() < deadline {
                        try await calls.stats("bench-pub", path: path)
                        count += 1
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(total) / statsSeconds
    }

    /// A volume of `gib` GiB (64 MiB files of incompressible bytes), snapshotted to `dest`; then the time from
    /// CreateVolume to a published target, and to the first MiB read there, for a full and a lazy restore.
    func restoreFigures(_ calls: CSICalls) async throws {
        try await calls.create("bench-src")
        let source = work + "/pods/source/volume"
        try await calls.stage("bench-src", work + "/staging/bench-src")
        try await calls.publish("bench-src", staging: work + "/staging/bench-src", target: source)
        let files = gib * 16
        let written = Date()
        for index in 0..<files { try writeRandom(source + "/file-\(index)", bytes: 64 << 20, seed: UInt64(index + 1)) }
        let writeSeconds = Date().timeIntervalSince(written)
        let snapped = Date()
        let snapshot = try await calls.snapshot("bench-snap", of: "bench-src", dest: dest)
        let snapshotSeconds = Date().timeIntervalSince(snapped)
        let megabytes = Double(files * 64) * 1.048576
        print(String(format: "| %d GiB written into the source volume | %.1f s |", gib, writeSeconds))
        print(String(format: "| CreateSnapshot until ready (backup to %@) | %.1f s (%.0f MB/s) |", dest,
                     snapshotSeconds, megabytes / snapshotSeconds))
        for lazy in [false, true] {
            dropCaches()
            let name = lazy ? "bench-lazy" : "bench-full"
            let target = work + "/pods/\(name)/volume"
            let started = Date()
            try await calls.create(name, parameters: lazy ? ["lazy": "true"] : [:], snapshot: snapshot)
            try await calls.stage(name, work + "/staging/" + name)
            try await calls.publish(name, staging: work + "/staging/" + name, target: target)
            let ready = Date().timeIntervalSince(started)
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: target + "/file-\(files / 2)"))
            let first = try handle.read(upToCount: 1 << 20) ?? Data()
            try handle.close()
            guard first.count == 1 << 20 else { throw ValidationError("\(name): a short read of the restored file") }
            let read = Date().timeIntervalSince(started)
            print(String(format: "| %@ restore of %d GiB: CreateVolume → NodePublish done | %.2f s |",
                         lazy ? "lazy" : "full", gib, ready))
            print(String(format: "| %@ restore: … → first MiB of a file read | %.2f s |", lazy ? "lazy" : "full", read))
            try await calls.unpublish(name, target: target)
            try await calls.unstage(name, work + "/staging/" + name)
            try await calls.delete(name)
        }
        try await calls.unpublish("bench-src", target: source)
        try await calls.unstage("bench-src", work + "/staging/bench-src")
        try await calls.delete("bench-src")
        try await calls.deleteSnapshot(snapshot)
    }

    func writeRandom(_ path: String, bytes: Int, seed: UInt64) throws {
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        var buffer = [UInt64](repeating: 0, count: 1 << 17)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw ValidationError("cannot create \(path)") }
        defer { close(fd) }
        var left = bytes
        while left > 0 {
            for index in buffer.indices {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
                buffer[index] = state
            }
            let count = min(left, buffer.count * 8)
            let done = buffer.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, count) }
            guard done == count else { throw ValidationError("short write to \(path)") }
            left -= count
        }
        guard fsync(fd) == 0 else { throw ValidationError("fsync \(path) failed") }
    }

    func dropCaches() {
        sync()
        if let handle = FileHandle(forWritingAtPath: "/proc/sys/vm/drop_caches") {
            handle.write(Data("3\n".utf8))
            try? handle.close()
        }
    }

    func percentile(_ values: [Double], _ fraction: Double) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
    }
}
