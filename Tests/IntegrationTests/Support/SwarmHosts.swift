import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Two hosts on this machine joined in a Docker swarm (../shared/TESTING.md's recipe): each is a network namespace
/// with private mount and UTS namespaces, its own `/run` (so its own `/run/docker/plugins`), its own dockerd and
/// its own convoy daemon, whose plugin socket that dockerd finds. Host 1 is the swarm's manager; host 2 a worker.
/// The two reach each other on a veth pair with link-local addresses (and, when connected, this machine on a
/// bridge).
final class SwarmHosts {
    let directory: String
    /// Unique per run: namespaces, links and cgroups carry it.
    let tag: String
    private(set) var started: [Int] = []

    init() throws {
        guard getuid() == 0 else { throw HarnessError("the swarm tests need root") }
        tag = String(UUID().uuidString.prefix(4)).lowercased()
        directory = "/tmp/cvs-" + tag
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Command.check("/usr/sbin/ip", ["netns", "add", namespace(1)])
        try Command.check("/usr/sbin/ip", ["netns", "add", namespace(2)])
        try Command.check("/usr/sbin/ip", ["link", "add", "cv\(tag)1", "netns", namespace(1), "type", "veth",
                                           "peer", "name", "cv\(tag)2", "netns", namespace(2)])
        for index in [1, 2] {
            try Command.check("/usr/sbin/ip", ["-n", namespace(index), "addr", "add", address(index) + "/24",
                                               "dev", "cv\(tag)\(index)"])
            try Command.check("/usr/sbin/ip", ["-n", namespace(index), "link", "set", "lo", "up"])
            try Command.check("/usr/sbin/ip", ["-n", namespace(index), "link", "set", "cv\(tag)\(index)", "up"])
        }
    }

    /// This machine's address on the link `connectToMachine` makes.
    let machineAddress = "169.254.78.254"

    /// Links both hosts to this machine's own network namespace (a bridge holding `machineAddress`, a veth from
    /// each host to it), so that they reach servers that run here, such as the run's glusterd.
    func connectToMachine() throws {
        // A run killed before its clean-up leaves its bridge holding the address, and the hosts' packets would go
        // there: remove it first.
        let holders = try Command.check("/usr/sbin/ip", ["-o", "addr", "show", "to", machineAddress])
        for line in holders.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count > 1, fields[1].hasPrefix("cb") {
                _ = try? Command.run("/usr/sbin/ip", ["link", "del", String(fields[1])])
            }
        }
        try Command.check("/usr/sbin/ip", ["link", "add", bridge, "type", "bridge"])
        try Command.check("/usr/sbin/ip", ["addr", "add", machineAddress + "/24", "dev", bridge])
        try Command.check("/usr/sbin/ip", ["link", "set", bridge, "up"])
        for index in [1, 2] {
            try Command.check("/usr/sbin/ip", ["link", "add", "cr\(tag)\(index)", "type", "veth", "peer", "name",
                                               "cm\(tag)\(index)", "netns", namespace(index)])
            try Command.check("/usr/sbin/ip", ["link", "set", "cr\(tag)\(index)", "master", bridge, "up"])
            try Command.check("/usr/sbin/ip", ["-n", namespace(index), "addr", "add", "169.254.78.\(index)/24",
                                               "dev", "cm\(tag)\(index)"])
            try Command.check("/usr/sbin/ip", ["-n", namespace(index), "link", "set", "cm\(tag)\(index)", "up"])
        }
    }

    private var bridge: String { "cb\(tag)" }

    func namespace(_ index: Int) -> String { "cvs-\(tag)-\(index)" }
    func address(_ index: Int) -> String { "169.254.77.\(index)" }
    func root(_ index: Int) -> String { directory + "/h\(index)" }

    /// Starts host `index`: its convoy daemon (with `convoyArguments`, plugin socket in the host's
    /// `/run/docker/plugins`) and its dockerd, and waits until the engine answers.
    func start(_ index: Int, convoyArguments: [String]) throws {
        let base = root(index)
        try FileManager.default.createDirectory(atPath: base + "/cg", withIntermediateDirectories: true)
        let convoy = ([DaemonHarness.binary, "daemon", "--root", base + "/convoy", "--socket", base + "/convoy.sock",
                       "--plugin-socket", "/run/docker/plugins/convoy.sock"] + convoyArguments)
            .map { "'\($0)'" }.joined(separator: " ")
        let script = """
            set -e
            hostname h\(index)
            mount --rbind /sys/fs/cgroup \(base)/cg; mount -t sysfs sysfs /sys; mount --move \(base)/cg /sys/fs/cgroup
            mount -t tmpfs tmpfs /run; mkdir -p /run/docker/plugins
            \(convoy) > \(base)/convoy.log 2>&1 &
            exec env DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 /usr/sbin/dockerd --data-root \(base)/data \\
              --exec-root \(base)/exec --pidfile \(base)/docker.pid -H unix://\(base)/docker.sock \\
              --bip 169.254.1\(index).1/24 --default-address-pool base=169.254.\(index * 32).0/19,size=24 \\
              --cgroup-parent /\(namespace(index)) > \(base)/dockerd.log 2>&1
            """
        try script.write(toFile: base + "/host.sh", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        // nsenter, not `ip netns exec`, which remounts /sys and loses the cgroup mounts.
        process.arguments = ["/usr/bin/nsenter", "--net=/run/netns/\(namespace(index))", "/usr/bin/unshare", "-m",
                             "-u", "--propagation", "private", "/bin/sh", base + "/host.sh"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        started.append(index)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if (try? docker(index, ["version"]))?.status == 0 {
                let tarball = try DockerEngine.busyboxTarball(in: base)
                try dockerOK(index, ["import", "-c", "ENV PATH=/bin", "-c", "CMD [\"/bin/sh\"]", tarball,
                                     "tiny:latest"])
                return
            }
            usleep(200_000)
        }
        throw HarnessError("dockerd of host \(index) did not answer within 60 s: \(log(index))")
    }

    /// Host 1 starts a swarm; host 2 joins it as a worker.
    func formSwarm() throws {
        try dockerOK(1, ["swarm", "init", "--advertise-addr", address(1), "--listen-addr", address(1) + ":2377",
                         "--default-addr-pool", "169.254.128.0/18", "--default-addr-pool-mask-length", "24"])
        let token = try dockerOK(1, ["swarm", "join-token", "-q", "worker"])
        try dockerOK(2, ["swarm", "join", "--token", token, "--advertise-addr", address(2), address(1) + ":2377"])
    }

    func docker(_ index: Int, _ arguments: [String], timeout: TimeInterval = 120) throws -> CommandResult {
        try Command.run("/usr/bin/docker", ["-H", "unix://\(root(index))/docker.sock"] + arguments, timeout: timeout)
    }

    @discardableResult
    func dockerOK(_ index: Int, _ arguments: [String], timeout: TimeInterval = 120) throws -> String {
        let result = try docker(index, arguments, timeout: timeout)
        guard result.status == 0 else {
            throw HarnessError("docker (host \(index)) \(arguments.joined(separator: " ")) exited "
                + "\(result.status): \(result.stderr)")
        }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func log(_ index: Int) -> String {
        ["dockerd", "convoy"].map { name in
            "\(name): " + ((try? String(contentsOfFile: root(index) + "/\(name).log", encoding: .utf8)) ?? "")
                .suffix(3000)
        }.joined(separator: "\n")
    }

    /// The host dies: every process of it, -9 (its dockerd, containerd, shims and convoy, found by the host's
    /// mount namespace; its containers, by its cgroup parent).
    func kill(_ index: Int) {
        for pid in processes(of: index) { Glibc.kill(pid, SIGKILL) }
        started.removeAll { $0 == index }
    }

    private func processes(of index: Int) -> [Int32] {
        let pidFile = (try? String(contentsOfFile: root(index) + "/docker.pid", encoding: .utf8)) ?? ""
        let dockerd = pidFile.trimmingCharacters(in: .whitespacesAndNewlines)
        // The pid file of a dockerd killed earlier may name a process that reused its pid: the namespace counts
        // only when that process is this host's dockerd, and never when it is this test's own namespace.
        let command = (try? String(contentsOfFile: "/proc/\(dockerd)/cmdline", encoding: .utf8)) ?? ""
        let ours = !dockerd.isEmpty && command.contains(root(index) + "/data")
        var hostNamespace = ours ? Self.link("/proc/\(dockerd)/ns/mnt") : nil
        if hostNamespace == Self.link("/proc/self/ns/mnt") { hostNamespace = nil }
        let all = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return all.compactMap { Int32($0) }.filter { pid in
            if let hostNamespace, Self.link("/proc/\(pid)/ns/mnt") == hostNamespace { return true }
            let cgroup = (try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)) ?? ""
            return cgroup.contains("/\(namespace(index))/")
        }
    }

    private static func link(_ path: String) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: path)
    }

    /// Kills what runs, removes the namespaces (their links go with them) and the files.
    func cleanUp() {
        for index in [1, 2] { kill(index) }
        usleep(500_000)
        for index in [1, 2] { _ = try? Command.run("/usr/sbin/ip", ["netns", "del", namespace(index)]) }
        _ = try? Command.run("/usr/sbin/ip", ["link", "del", bridge])
        if let mounts = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) {
            for line in mounts.split(separator: "\n").reversed() {
                let fields = line.split(separator: " ")
                if fields.count > 1, fields[1].hasPrefix(directory) { umount2(String(fields[1]), Int32(MNT_DETACH)) }
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
