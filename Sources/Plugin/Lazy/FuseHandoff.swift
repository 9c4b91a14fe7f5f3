import CLinux
import ConvoyCore
import Foundation
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's side of the FUSE keeper (`FuseKeeper`): at start it connects (starting a keeper when none runs)
/// and takes back the descriptors of the lazy volumes' mounts an earlier daemon left; then it gives the keeper a
/// copy of every new lazy mount's descriptor, and tells it which to close when a mount goes for good.
final class FuseHandoff: Sendable {
    struct Held {
        /// "major:minor" of the mount the descriptor belongs to, as the mount table shows it.
        var device: String
        var descriptor: Int32
    }

    private let path: String
    private let orphanTimeout: Double
    private let logger: Logger
    /// The connection to the keeper; nil until one is needed (no keeper runs while no lazy volume does).
    private let connection = Mutex<Int32?>(nil)
    private let inherited = Mutex<[String: Held]>([:])

    /// `path`: the keeper's socket. At start, takes back what a keeper still holds from an earlier daemon.
    init(path: String, orphanTimeout: Double, logger: Logger) {
        self.path = path
        self.orphanTimeout = orphanTimeout
        self.logger = logger
        guard let socket = Self.open(path) else { return }
        connection.withLock { $0 = socket }
        let held = Self.hello(socket)
        inherited.withLock { $0 = held }
        if !held.isEmpty { logger.info("the FUSE keeper held \(held.count) lazy volume mount(s) of an earlier daemon") }
    }

    deinit {
        if let socket = connection.withLock({ $0 }) { close(socket) }
    }

    /// The connection, made now if there is none: a keeper is started when none answers. Nil (and logged) when
    /// that fails: that mount then goes with the daemon, as without a keeper.
    private func connected() -> Int32? {
        connection.withLock { connection -> Int32? in
            if let connection { return connection }
            var socket = Self.open(path)
            if socket == nil {
                let arguments = ["/proc/self/exe", "fuse-keeper", "--socket", path,
                                 "--orphan-timeout", String(orphanTimeout)]
                var argv = arguments.map { strdup($0) } + [nil]
                defer { argv.forEach { free($0) } }
                guard convoy_spawn_detached(&argv, path.replacingOccurrences(of: ".sock", with: ".log")) > 0 else {
                    let reason = String(cString: strerror(errno))
                    logger.error("cannot start the FUSE keeper (\(reason)): lazy volumes' mounts go with this daemon")
                    return nil
                }
                let deadline = ContinuousClock.now + .seconds(5)
                while socket == nil, ContinuousClock.now < deadline {
                    usleep(20_000)
                    socket = Self.open(path)
                }
            }
            guard let socket, FuseKeeper.send(socket, "HELLO", descriptor: -1) else {
                if let socket { close(socket) }
                logger.error("the FUSE keeper at \(path) does not answer: lazy volumes' mounts go with this daemon")
                return nil
            }
            // A keeper that started since holds nothing of ours; any descriptor it sends is closed.
            for held in Self.hello(socket, greeted: true).values { close(held.descriptor) }
            connection = socket
            return socket
        }
    }

    /// Says HELLO (unless `greeted`) and reads the held descriptors up to END.
    private static func hello(_ socket: Int32, greeted: Bool = false) -> [String: Held] {
        guard greeted || FuseKeeper.send(socket, "HELLO", descriptor: -1) else { return [:] }
        var inherited: [String: Held] = [:]
        while true {
            var buffer = [UInt8](repeating: 0, count: FuseKeeper.maxMessage)
            var descriptor: Int32 = -1
            let count = convoy_receive_with_fd(socket, &buffer, buffer.count, &descriptor)
            guard count > 0 else { break }
            let parts = String(decoding: buffer[..<count], as: UTF8.self).split(separator: " ", maxSplits: 2)
            if parts.first == "END" { break }
            guard parts.count == 3, parts[0] == "HELD", descriptor >= 0 else {
                if descriptor >= 0 { close(descriptor) }
                continue
            }
            inherited[String(parts[2])] = Held(device: String(parts[1]), descriptor: descriptor)
        }
        return inherited
    }

    private static func open(_ path: String) -> Int32? {
        let connection = Glibc.socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard connection >= 0 else { return nil }
        guard FuseKeeper.connect(connection, path: path) else {
            close(connection)
            return nil
        }
        return connection
    }

    /// The descriptor an earlier daemon's mount at `path` left, now the caller's to serve or close.
    func take(_ path: String) -> Held? { inherited.withLock { $0.removeValue(forKey: path) } }

    /// Gives the keeper a copy of the descriptor of the mount at `path`; false when it could not.
    func hold(_ path: String, device: Int32, mount: MountInfo.Mount?) -> Bool {
        guard let mount else {
            logger.warning("no mount at \(path): not given to the FUSE keeper")
            return false
        }
        let message = "HOLD \(mount.major):\(mount.minor) \(path)"
        guard let socket = connected() else { return false }
        if FuseKeeper.send(socket, message, descriptor: device) { return true }
        var failure = errno
        // The keeper went away since we connected (an idle one exits when its daemon leaves holding nothing, and
        // this daemon may have connected in that moment): connect once more, which starts a keeper.
        if [EPIPE, ECONNRESET, ENOTCONN, ECONNREFUSED].contains(failure) {
            forget(socket)
            if let again = connected() {
                if FuseKeeper.send(again, message, descriptor: device) { return true }
                failure = errno
            }
        }
        logger.warning("cannot give the mount at \(path) to the FUSE keeper: \(String(cString: strerror(failure)))")
        return false
    }

    /// Closes a connection found dead, so that the next `connected()` makes a new one.
    private func forget(_ socket: Int32) {
        connection.withLock { connection in
            guard connection == socket else { return }
            close(socket)
            connection = nil
        }
    }

    /// Tells the keeper the mount at `path` goes for good.
    func drop(_ path: String) {
        guard let socket = connection.withLock({ $0 }) else { return }
        _ = FuseKeeper.send(socket, "DROP \(path)", descriptor: -1)
    }

    /// Closes what no volume claimed at start (volumes deleted or finished meanwhile) and has the keeper close it.
    func dropUnclaimed() {
        let left = inherited.withLock { held in
            defer { held = [:] }
            return held
        }
        for (path, held) in left {
            close(held.descriptor)
            drop(path)
        }
    }
}
