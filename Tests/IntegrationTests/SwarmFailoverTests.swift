import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The proof of issue 19 for shared storage: a one-replica swarm service appends a counter (with sync) to a convoy
/// volume on a directory both hosts share (`vfs.shared=true`); the host running it dies (-9: its dockerd,
/// containerd, container and convoy); swarm starts the task on the other host, whose convoy hands it the same
/// volume, and the counter goes on from the last value written, none lost or repeated.
final class SwarmFailoverTests: XCTestCase {
    /// Each value is appended and synced before the next; a new task continues from the file's last line.
    static let counterLoop = "n=$(tail -n 1 /data/counter 2>/dev/null || echo 0); "
        + "while true; do n=$((n+1)); echo $n >> /data/counter; sync; sleep 0.1; done"

    func testAServiceFollowsItsVolumeToTheOtherHostWhenItsHostDies() throws {
        if let reason = DockerEngine.skipReason { throw XCTSkip(reason) }
        let hosts = try SwarmHosts()
        defer { hosts.cleanUp() }
        let shared = hosts.directory + "/shared"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        for index in [1, 2] {
            try hosts.start(index, convoyArguments: [
                "--drivers", "vfs", "--driver-opts", "vfs.path=\(shared)", "--driver-opts", "vfs.shared=true",
                "--host-id", "h\(index)", "--host-lease-ttl", "3"])
        }
        try hosts.formSwarm()
        // A node's description, which the scheduler reads, lists a plugin found by its socket once it was used.
        for index in [1, 2] { try hosts.dockerOK(index, ["volume", "create", "-d", "convoy", "counter"]) }
        // The task starts on the worker, so that the host that dies is not the swarm's only manager.
        try hosts.dockerOK(1, ["node", "update", "--availability", "drain", "h1"])
        try hosts.dockerOK(1, ["service", "create", "--detach", "--name", "counter", "--replicas", "1",
                               "--endpoint-mode", "dnsrr", "--no-resolve-image",
                               "--mount", "type=volume,source=counter,target=/data,volume-driver=convoy",
                               "tiny:latest", "sh", "-c", Self.counterLoop])
        let counter = shared + "/counter/counter"
        try waitFor("the service to count on host 2", hosts) { self.values(counter).last ?? 0 >= 20 }
        XCTAssertEqual(try runningNode(hosts), "h2")
        try hosts.dockerOK(1, ["node", "update", "--availability", "active", "h1"])

        let killed = Date()
        hosts.kill(2)
        let lastOnHost2 = values(counter).last ?? 0
        try waitFor("the counter to go on on host 1", hosts) { (self.values(counter).last ?? 0) > lastOnHost2 }
        let failover = Date().timeIntervalSince(killed)
        try waitFor("a few more values", hosts) { (self.values(counter).last ?? 0) > lastOnHost2 + 10 }
        XCTAssertEqual(try runningNode(hosts), "h1")
        let all = values(counter)
        XCTAssertEqual(all, Array(1...all.count), "every value written once, in order, across the failover")
        print(String(format: "swarm failover (shared vfs): host 2 killed at value %d; the counter went on on host 1 "
                     + "%.1f s later", lastOnHost2, failover))
    }

    private func values(_ path: String) -> [Int] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { Int($0) }
    }

    private func runningNode(_ hosts: SwarmHosts) throws -> String {
        try hosts.dockerOK(1, ["service", "ps", "counter", "--filter", "desired-state=running", "--format",
                               "{{.Node}}"])
    }

    private func waitFor(_ what: String, _ hosts: SwarmHosts, seconds: TimeInterval = 120,
                         _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return }
            usleep(200_000)
        }
        let tasks = (try? hosts.docker(1, ["service", "ps", "--no-trunc", "counter"]).stdout) ?? ""
        throw HarnessError("waited \(Int(seconds)) s for \(what); tasks:\n\(tasks)\nhost 1:\n\(hosts.log(1))\n"
            + "host 2:\n\(hosts.log(2))")
    }
}
