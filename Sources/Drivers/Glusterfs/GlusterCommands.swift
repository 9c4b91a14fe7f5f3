import ConvoyCore
#if canImport(Glibc)
import Glibc
#endif

/// The external commands of the glusterfs driver: the FUSE client's mount, unmounts, and the gluster CLI for
/// directory quotas. Each runs with a timeout and its stderr in the error.
enum GlusterCommands {
    static let timeout = Duration.seconds(60)

    /// `mount -t glusterfs -o backup-volfile-servers=b:c,log-file=… a:/pool dir`: the first server hands out the
    /// volume file, the others stand in when it is down (afterwards the client talks to the bricks directly).
    static func mount(pool: String, servers: [String], at mountpoint: String,
                      logFile: String) async throws(ConvoyError) {
        guard let first = servers.first else { throw ConvoyError(.internalFailure, "no gluster server configured") }
        var options = ["log-file=\(logFile)"]
        if servers.count > 1 { options.append("backup-volfile-servers=" + servers.dropFirst().joined(separator: ":")) }
        do {
            _ = try await ExternalCommand.run("/bin/mount", ["-t", "glusterfs", "-o", options.joined(separator: ","),
                                                             "\(first):/\(pool)", mountpoint], timeout: timeout,
                                              leavesDaemon: true)
        } catch {
            throw ConvoyError(.unavailable, "cannot mount gluster volume \(pool) "
                + "from \(servers.joined(separator: ", ")): \(error.message); "
                + "is the volume started (`gluster volume status \(pool)`)? The client's log is \(logFile)")
        }
    }

    /// `umount -l`: a dead client's mount cannot be unmounted normally while anything holds it (a container's
    /// bind mount does), so it is detached from the tree and goes when its last user does.
    static func detach(_ mountpoint: String) async throws(ConvoyError) {
        _ = try await ExternalCommand.run("/bin/umount", ["-l", mountpoint], timeout: timeout)
    }

    static let cli = "/usr/sbin/gluster"
    static let glusterdSocket = "/var/run/glusterd.socket"

    /// Limits directory `/<name>` of the pool to `bytes` with a gluster quota. Needs the pool's quota enabled
    /// (`gluster volume quota <pool> enable`, a decision for the pool's owner) and a glusterd of the trusted pool
    /// on this host: the gluster CLI refuses changes through --remote-host.
    static func limit(pool: String, directory name: String, bytes: UInt64) async throws(ConvoyError) {
        // Without a local glusterd the CLI would wait for one until the timeout, on every create.
        guard access(cli, X_OK) == 0, access(glusterdSocket, F_OK) == 0 else {
            throw ConvoyError(.unavailable, "no glusterd runs on this host (\(glusterdSocket) is missing): "
                + "gluster quotas can only be set on a server of the pool")
        }
        _ = try await ExternalCommand.run(cli, ["--mode=script", "volume", "quota", pool, "limit-usage",
                                                "/" + name, "\(bytes)"],
                                          timeout: timeout)
    }

    static func removeLimit(pool: String, directory name: String) async throws(ConvoyError) {
        _ = try await ExternalCommand.run(cli, ["--mode=script", "volume", "quota", pool, "remove", "/" + name],
                                          timeout: timeout)
    }
}
