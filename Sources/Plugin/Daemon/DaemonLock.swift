import ConvoyCore
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive `flock` on `<root>/convoy.lock`, held for the daemon's lifetime, so two daemons never share one
/// root (and one state database). The kernel drops the lock when the process dies, even by kill -9.
public final class DaemonLock: Sendable {
    public let path: String
    private let fd: Int32

    public init(root: String) throws(ConvoyError) {
        path = root + "/convoy.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ConvoyError(.unavailable, "cannot open the lock file \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = Self.readHolder(fd)
            close(fd)
            throw ConvoyError(.conflict, "another convoy daemon\(holder.map { " (pid \($0))" } ?? "") "
                + "is already using root \(root); stop it first, or give this one another --root")
        }
        // Record who holds it, for the message above.
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
        self.fd = fd
    }

    private static func readHolder(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = pread(fd, &buffer, buffer.count, 0)
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count], as: UTF8.self).filter(\.isNumber)
        return text.isEmpty ? nil : text
    }

    deinit {
        close(fd)
    }
}
