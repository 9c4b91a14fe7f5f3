import ConvoyCore
import Foundation

/// The gluster volumes (pools) this daemon has mounted, each once under `<root>/glusterfs/mounts/<pool>` and
/// shared by every convoy volume in it. A pool whose FUSE client died is found by the next operation that needs it
/// and by the periodic check, detached and mounted again; what happened is kept for the volumes' Status.
actor PoolMounts {
    /// A pool's trouble, as users see it in Status.
    struct Health: Sendable, Equatable {
        /// What went wrong (nil when the mount answers), since when, and why remounting has not cured it yet.
        var problem: String?
        var problemSince: String?
        var remountFailure: String?
        /// The last problem that was cured, and when.
        var lastRecovery: String?
    }

    let configuration: GlusterConfiguration
    private var health: [String: Health] = [:]
    /// One repair per pool at a time: concurrent callers wait for the same one.
    private var repairs: [String: Task<ConvoyError?, Never>] = [:]

    init(configuration: GlusterConfiguration) {
        self.configuration = configuration
    }

    nonisolated var mountsDirectory: String { configuration.directory + "/mounts" }

    nonisolated func mountpoint(of pool: String) throws(ConvoyError) -> String {
        try PathGuard.child(of: mountsDirectory, named: pool)
    }

    /// Pools mounted by an earlier run (their mount directories remain): checked and remounted like the others.
    nonisolated func previouslyUsedPools() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: mountsDirectory)) ?? [])
            .filter { (try? GlusterConfiguration.pool($0, option: "pool")) != nil }.sorted()
    }

    /// Makes the pool's mount answer: mounts it, or detaches a dead mount and mounts it again. Throws when the
    /// pool cannot be reached; the problem stays in its Health until a later repair succeeds.
    func ensureMounted(_ pool: String) async throws(ConvoyError) {
        if health[pool] == nil { health[pool] = Health() }
        let task: Task<ConvoyError?, Never>
        if let running = repairs[pool] {
            task = running
        } else {
            task = Task { await self.repair(pool) }
            repairs[pool] = task
        }
        let failure = await task.value
        // Only this repair's entry: a later one may have started while this caller waited to resume.
        if repairs[pool] == task { repairs[pool] = nil }
        if let failure { throw failure }
    }

    /// Every pool in use, once: what the periodic check runs.
    func checkAll() async {
        for pool in health.keys.sorted() { try? await ensureMounted(pool) }
    }

    func health(of pool: String) -> Health { health[pool] ?? Health() }

    private func repair(_ pool: String) async -> ConvoyError? {
        let mountpoint: String
        do { mountpoint = try self.mountpoint(of: pool) } catch { return error }
        switch await PoolProbe.probeOffPool(mountpoint) {
        case .connected:
            return nil
        case .notMounted:
            break
        case .failing(let answer):
            noteProblem(pool, "the mount answered '\(answer)'")
            do { try await GlusterCommands.detach(mountpoint) } catch {
                return noteRemountFailure(pool, "cannot detach the dead mount: \(error.message)")
            }
        }
        do throws(ConvoyError) {
            try Filesystem.makeDirectory(mountpoint, mode: 0o755)
            try await GlusterCommands.mount(pool: pool, servers: configuration.servers, at: mountpoint,
                                            logFile: configuration.directory + "/\(pool).log")
            if case .failing(let answer) = await PoolProbe.probeOffPool(mountpoint) {
                throw ConvoyError(.unavailable, "gluster volume \(pool) was mounted but answers '\(answer)'")
            }
        } catch {
            // The mount point of a pool never mounted stays: the next start tries it again, as the check does.
            if health[pool]?.problem == nil { noteProblem(pool, "not mounted") }
            return noteRemountFailure(pool, error.message)
        }
        var healed = health[pool] ?? Health()
        if let problem = healed.problem {
            healed.lastRecovery = "remounted at \(Self.now()) after: \(problem) (since \(healed.problemSince ?? "?"))"
        }
        (healed.problem, healed.problemSince, healed.remountFailure) = (nil, nil, nil)
        health[pool] = healed
        return nil
    }

    private func noteProblem(_ pool: String, _ problem: String) {
        if health[pool]?.problem == nil { health[pool]?.problemSince = Self.now() }
        health[pool]?.problem = problem
    }

    private func noteRemountFailure(_ pool: String, _ failure: String) -> ConvoyError {
        health[pool]?.remountFailure = "\(Self.now()): \(failure)"
        return ConvoyError(.unavailable, "gluster volume \(pool): \(health[pool]?.problem ?? "unavailable"); "
            + "mounting it failed: \(failure)")
    }

    static func now() -> String { Date().formatted(.iso8601) }
}
