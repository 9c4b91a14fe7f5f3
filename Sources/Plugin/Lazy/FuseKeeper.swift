import BackupFS
import CLinux
import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `convoy fuse-keeper`: a small process that holds a copy of the /dev/fuse descriptor of every lazy volume's
/// backup mount, so that the FUSE connections outlive the daemon that serves them (a restart, an upgrade, a
/// crash). While no daemon runs, reads of those volumes wait in the kernel instead of failing; the next daemon
/// takes the descriptors back and answers them (`BackupMount.adopt`). A keeper left alone longer than its orphan
/// timeout closes them, and the reads fail as they would have without it.
///
/// Its protocol, one message per packet on a SOCK_SEQPACKET socket (root-only, `<root>/fuse-keeper.sock`):
/// `HELLO` (the daemon; it stays connected while it runs) is answered by one `HELD <major>:<minor> <path>`
/// carrying its descriptor per connection held, then `END`; `HOLD <major>:<minor> <path>` with a descriptor
/// keeps it (the mount at `path`, whose device number is given); `DROP <path>` closes it.
///
/// A daemon that dies while one of its own threads waits on a mount it serves would never finish dying (see
/// `DyingServerRequests`): the keeper looks at its daemon every second and answers such requests.
public enum FuseKeeper {
    static let maxMessage = 8192

    struct Held {
        var device: String
        var descriptor: Int32
    }

    /// Serves until orphaned too long; returns the exit status.
    public static func run(socket path: String, orphanTimeout: Double) -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        signal(SIGHUP, SIG_IGN)
        let listener = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0, bind(listener, path: path), chmod(path, 0o600) == 0, listen(listener, 8) == 0 else {
            report("cannot listen on \(path): \(String(cString: strerror(errno)))")
            return 1
        }
        var held: [String: Held] = [:]
        var clients: [Int32] = []
        var daemon: Int32?
        var warnedCannotResend = false
        var orphanedAt = ContinuousClock.now
        report("holding FUSE connections for the daemon at \(path) (orphan timeout \(orphanTimeout) s)")
        while true {
            var polled = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
                + clients.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            var wait: Int32 = -1
            if daemon == nil {
                let left = orphanTimeout - (ContinuousClock.now - orphanedAt) / .seconds(1)
                if left <= 0 {
                    report("no daemon came back within \(orphanTimeout) s: closing \(held.count) FUSE connection(s)")
                    for entry in held.values { close(entry.descriptor) }
                    unlink(path)
                    return 0
                }
                wait = Int32(min(left * 1000 + 1, 60_000))
            } else {
                wait = 1000
            }
            guard poll(&polled, nfds_t(polled.count), wait) >= 0 || errno == EINTR else { return 1 }
            // The connected daemon's process (SO_PEERCRED), watched for a death that cannot finish.
            if let daemon, case let process = convoy_socket_peer_pid(daemon), process > 0,
               DyingServerRequests.isDying(process) {
                answerOwnRequests(of: process, held: held, warned: &warnedCannotResend)
            }
            if polled[0].revents & Int16(POLLIN) != 0 {
                let client = accept(listener, nil, nil)
                if client >= 0 {
                    _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                    clients.append(client)
                }
            }
            for entry in polled.dropFirst() where entry.revents != 0 {
                let client = entry.fd
                var buffer = [UInt8](repeating: 0, count: maxMessage)
                var descriptor: Int32 = -1
                let count = convoy_receive_with_fd(client, &buffer, buffer.count, &descriptor)
                guard count > 0 else {
                    close(client)
                    clients.removeAll { $0 == client }
                    if daemon == client {
                        daemon = nil
                        orphanedAt = .now
                        if held.isEmpty { unlink(path); return 0 }
                        report("the daemon went away: holding \(held.count) FUSE connection(s)")
                    }
                    continue
                }
                let message = String(decoding: buffer[..<count], as: UTF8.self)
                handle(message, descriptor: descriptor, from: client, held: &held, daemon: &daemon)
            }
        }
    }

    /// The daemon is dying with threads of its own waiting on its own mounts: answers them so it can finish.
    private static func answerOwnRequests(of process: pid_t, held: [String: Held], warned: inout Bool) {
        for (path, entry) in held {
            guard let answered = DyingServerRequests.answer(madeBy: process, on: entry.descriptor) else {
                if warned { continue }
                warned = true
                report("the daemon (pid \(process)) is dying and this kernel cannot resend FUSE requests (Linux 6.9): "
                    + "its own requests on \(path) stay unanswered")
                continue
            }
            if answered > 0 {
                report("the daemon (pid \(process)) is dying: answered \(answered) of its own request(s) on \(path) "
                    + "with EIO so that it can exit")
            }
        }
    }

    private static func handle(_ message: String, descriptor: Int32, from client: Int32, held: inout [String: Held],
                               daemon: inout Int32?) {
        let parts = message.split(separator: " ", maxSplits: 2).map(String.init)
        switch (parts.first, descriptor >= 0) {
        case ("HELLO", false):
            daemon = client
            for (path, entry) in held.sorted(by: { $0.key < $1.key }) {
                _ = send(client, "HELD \(entry.device) \(path)", descriptor: entry.descriptor)
            }
            _ = send(client, "END", descriptor: -1)
        case ("HOLD", true) where parts.count == 3:
            if let old = held[parts[2]] { close(old.descriptor) }
            held[parts[2]] = Held(device: parts[1], descriptor: descriptor)
        case ("DROP", false) where parts.count == 2:
            let path = message.dropFirst(5)
            if let old = held.removeValue(forKey: String(path)) { close(old.descriptor) }
        default:
            if descriptor >= 0 { close(descriptor) }
            report("ignored a message it does not know: \(message.prefix(80))")
        }
    }

    static func send(_ socket: Int32, _ text: String, descriptor: Int32) -> Bool {
        let bytes = Array(text.utf8)
        return convoy_send_with_fd(socket, bytes, bytes.count, descriptor) == bytes.count
    }

    static func bind(_ socket: Int32, path: String) -> Bool {
        unlink(path)
        return UnixSocketAddress.with(Array(path.utf8)) { Glibc.bind(socket, $0, $1) == 0 } ?? false
    }

    static func connect(_ socket: Int32, path: String) -> Bool {
        UnixSocketAddress.with(Array(path.utf8)) { Glibc.connect(socket, $0, $1) == 0 } ?? false
    }

    private static func report(_ line: String) {
        FileHandle.standardError.write(Data("\(Date().formatted(.iso8601)) fuse-keeper: \(line)\n".utf8))
    }
}
