import ConvoyCore
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram of `KEY=VALUE` lines to the
/// socket `NOTIFY_SOCKET` names (a path, or `@name` in the abstract namespace). A unit of `Type=notify` counts the
/// service started only at `READY=1`, so `Before=docker.service` holds Docker back until the plugin socket answers.
/// Without `NOTIFY_SOCKET` (not started by systemd) nothing is sent.
struct SystemdNotify: Sendable {
    let socketPath: String?

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        socketPath = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Sends `state` (e.g. "READY=1\nSTATUS=serving"); a failure is returned for the log, never thrown: systemd
    /// then times the start out, which says more than a daemon that refused to run.
    @discardableResult
    func send(_ state: String) -> String? {
        guard let socketPath else { return nil }
        guard socketPath.hasPrefix("/") || socketPath.hasPrefix("@") else {
            return "NOTIFY_SOCKET '\(socketPath)' is neither a path nor an abstract socket name"
        }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return "cannot open a socket to notify systemd: \(String(cString: strerror(errno)))" }
        defer { close(descriptor) }
        var path = Array(socketPath.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }
        let bytes = Array(state.utf8)
        guard let sent = UnixSocketAddress.with(path, { address, length in
            sendto(descriptor, bytes, bytes.count, Int32(MSG_NOSIGNAL), address, length)
        }) else { return "NOTIFY_SOCKET '\(socketPath)' is too long" }
        return sent == bytes.count ? nil : "cannot notify systemd at \(socketPath): \(String(cString: strerror(errno)))"
    }
}

/// Tells systemd the daemon is ready once every server it starts is accepting connections.
actor Readiness {
    private var waiting: Set<String>
    private let notify: SystemdNotify
    private let status: String
    private let logger: Logger

    init(servers: Set<String>, notify: SystemdNotify = SystemdNotify(), status: String, logger: Logger) {
        waiting = servers
        self.notify = notify
        self.status = status
        self.logger = logger
    }

    func serving(_ server: String) {
        guard waiting.remove(server) != nil, waiting.isEmpty else { return }
        if let problem = notify.send("READY=1\nSTATUS=\(status)") { logger.error("\(problem)") }
    }

    nonisolated func stopping() {
        if let problem = notify.send("STOPPING=1") { logger.warning("\(problem)") }
    }
}
