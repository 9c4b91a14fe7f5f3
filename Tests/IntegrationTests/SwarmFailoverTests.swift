import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The proof of issue 19: a one-replica swarm service appends a counter (with sync) to a convoy volume on shared
/// storage (a directory both hosts share with `vfs.shared=true`, or a gluster pool) or a replicated local volume;
/// the host running it dies (-9: its dockerd, containerd, container and convoy); swarm starts the task on the other
/// host, whose convoy hands it the same volume, and the counter goes on from the last value written (shared: none
/// lost or repeated) or from the newest replica.
final class SwarmFailoverTests: XCTestCase {
    /// Each value is appended and synced before the next; a new task continues from the file's last line.
    /// Each start is marked (`start N`: the value it goes on from), so a test can tell restored values from new.
    static let counterLoop = "n=$(grep -v start /data/counter 2>/dev/null | tail -n 1); n=${n:-0}; "
        + "echo start $n >> /data/counter; "
        + "while true; do n=$((n+1)); echo $n >> /data/counter; sync; sleep 0.1; done"

    func testAServiceFollowsItsVolumeToTheOtherHostWhenItsHostDies() throws {
        if let reason = DockerEngine.skipReason { throw XCTSkip(reason) }
        let hosts = try SwarmHosts()
        defer { hosts.cleanUp() }
        let shared = hosts.directory + "/shared"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        try startCounting(on: hosts, volumeOptions: "", convoyArguments: [
            "--drivers", "vfs", "--driver-opts", "vfs.path=\(shared)", "--driver-opts", "vfs.shared=true"])
        try killHost2AndCheckTheCounterGoesOn(hosts, counter: shared + "/counter/counter", storage: "shared vfs")
    }

    /// The same on a gluster pool, which each host's convoy mounts with the FUSE client from the run's glusterd
    /// (a pool of this test's own, its brick on this machine's end of the hosts' bridge): the counter goes on from
    /// the last value written, none lost or repeated.
    func testAServiceFollowsAGlusterVolumeToTheOtherHost() throws {
        _ = try GlusterServer.fromEnvironment()
        if let reason = DockerEngine.skipReason { throw XCTSkip(reason) }
        let hosts = try SwarmHosts()
        defer { hosts.cleanUp() }
        try hosts.connectToMachine()
        let pool = "cv-swarm-" + hosts.tag
        let brick = hosts.directory + "/brick"
        let gluster = ["/usr/sbin/gluster", "--mode=script", "volume"]
        try Command.check(gluster[0], Array(gluster.dropFirst()) + ["create", pool, "\(hosts.machineAddress):\(brick)",
                                                                    "force"])
        defer {
            _ = try? Command.run(gluster[0], Array(gluster.dropFirst()) + ["stop", pool, "force"])
            _ = try? Command.run(gluster[0], Array(gluster.dropFirst()) + ["delete", pool])
        }
        try Command.check(gluster[0], Array(gluster.dropFirst()) + ["start", pool])
        try startCounting(on: hosts, volumeOptions: "", convoyArguments: [
            "--drivers", "glusterfs", "--driver-opts", "glusterfs.servers=\(hosts.machineAddress)",
            "--driver-opts", "glusterfs.defaultvolumepool=\(pool)"])
        try killHost2AndCheckTheCounterGoesOn(hosts, counter: brick + "/counter/counter", storage: "gluster")
    }

    /// Shared storage: once the service counts on host 2, host 2 dies; the counter (read at `counter`, the file
    /// as the storage holds it) goes on on host 1 with every value written once, in order.
    private func killHost2AndCheckTheCounterGoesOn(_ hosts: SwarmHosts, counter: String, storage: String) throws {
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
        print("swarm failover (\(storage)): " + String(format: "host 2 killed at value %d; the counter went on on "
                     + "host 1 %.1f s later", lastOnHost2, failover))
    }

    /// A replicated local vfs volume: each host's own disk, replicas every second in a store both reach. The new
    /// host's Create is refused until the dead host's lease (3 s) expires (swarm retries the task), then restores
    /// the newest replica lazily; the counter goes on from the last value replicated.
    func testAServiceFollowsAReplicatedVolumeToTheOtherHost() throws {
        if let reason = DockerEngine.skipReason { throw XCTSkip(reason) }
        let hosts = try SwarmHosts()
        defer { hosts.cleanUp() }
        let store = hosts.directory + "/replicas"
        try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
        try startCounting(on: hosts, volumeOptions: ",volume-opt=replica=vfs://\(store),volume-opt=replicainterval=1s",
                          convoyArguments: ["--drivers", "vfs"])
        let onHost2 = hosts.root(2) + "/convoy/vfs/counter/counter"
        try waitFor("the service to count on host 2", hosts) { self.values(onHost2).last ?? 0 >= 50 }
        XCTAssertEqual(try runningNode(hosts), "h2")
        try hosts.dockerOK(1, ["node", "update", "--availability", "active", "h1"])

        let killed = Date()
        hosts.kill(2)
        let lastOnHost2 = values(onHost2).last ?? 0
        var onHost1 = ""
        try waitFor("the counter to go on on host 1", hosts, seconds: 180) {
            onHost1 = self.countedInService(hosts, 1)
            guard let start = self.restartedAt(onHost1) else { return false }
            return self.numbers(onHost1).count > start + 5
        }
        let failover = Date().timeIntervalSince(killed)
        XCTAssertEqual(try runningNode(hosts), "h1")
        // The restored replica is what host 2 had counted up to some value; host 1 counts on from it, in order.
        let restoredUpTo = try XCTUnwrap(restartedAt(onHost1))
        let counted = numbers(onHost1)
        XCTAssertEqual(counted, Array(1...counted.count), "the restored values and the new ones, in order")
        XCTAssertLessThanOrEqual(restoredUpTo, lastOnHost2)
        XCTAssertGreaterThan(restoredUpTo, 0, "nothing of host 2's counting was restored")
        print(String(format: "swarm failover (replicated vfs, 1 s interval): host 2 killed at value %d; host 1 went "
                     + "on from the replica's %d (%d values lost) %.1f s after the kill", lastOnHost2, restoredUpTo,
                     lastOnHost2 - restoredUpTo, failover))
    }

    /// Starts both hosts, a swarm, and the counting service on host 2 (host 1, the manager, drained).
    private func startCounting(on hosts: SwarmHosts, volumeOptions: String, convoyArguments: [String]) throws {
        for index in [1, 2] {
            try hosts.start(index, convoyArguments: ["--host-id", "h\(index)", "--host-lease-ttl", "3"]
                                + convoyArguments)
        }
        try hosts.formSwarm()
        // A node's description, which the scheduler reads, lists a plugin found by its socket once it was used.
        for index in [1, 2] { try hosts.dockerOK(index, ["volume", "create", "-d", "convoy", "probe"]) }
        // The task starts on the worker, so that the host that dies is not the swarm's only manager.
        try hosts.dockerOK(1, ["node", "update", "--availability", "drain", "h1"])
        try hosts.dockerOK(1, ["service", "create", "--detach", "--name", "counter", "--replicas", "1",
                               "--endpoint-mode", "dnsrr", "--no-resolve-image", "--restart-delay", "1s",
                               "--mount", "type=volume,source=counter,target=/data,volume-driver=convoy"
                                   + volumeOptions,
                               "tiny:latest", "sh", "-c", Self.counterLoop])
    }

    /// The counter file as the service's container on host `index` sees it (its volume may be an overlay in
    /// that host's mount namespace).
    private func countedInService(_ hosts: SwarmHosts, _ index: Int) -> String {
        guard let container = try? hosts.dockerOK(index, ["ps", "-q", "--filter",
                                                          "label=com.docker.swarm.service.name=counter"]),
              !container.isEmpty else { return "" }
        return (try? hosts.dockerOK(index, ["exec", container, "cat", "/data/counter"])) ?? ""
    }

    private func numbers(_ text: String) -> [Int] { text.split(separator: "\n").compactMap { Int($0) } }

    /// The value the last start of the counter went on from.
    private func restartedAt(_ text: String) -> Int? {
        text.split(separator: "\n").last { $0.hasPrefix("start ") }.flatMap { Int($0.dropFirst(6)) }
    }

    private func values(_ path: String) -> [Int] {
        numbers((try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
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
