import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a pool's mount point answers. A FUSE client that died (killed, crashed, OOM) leaves its mount in the
/// table, answering ENOTCONN ("Transport endpoint is not connected") to everything: the complaint Convoy's users
/// raised, which only an unmount and a new mount cure.
enum PoolProbe: Equatable, Sendable {
    case connected
    case notMounted
    case failing(String)

    static func probe(_ mountpoint: String) -> PoolProbe {
        var info = stat()
        guard stat(mountpoint, &info) == 0 else {
            let code = errno
            return code == ENOENT ? .notMounted : .failing(Filesystem.errnoText(code))
        }
        guard let mount = MountInfo.mount(at: mountpoint) else { return .notMounted }
        guard mount.type == "fuse.glusterfs" else {
            return .failing("\(mountpoint) holds a \(mount.type) mount, not glusterfs; unmount it")
        }
        return .connected
    }

    /// The same, on a thread of its own: a client waiting for an unreachable server can hold a stat for its
    /// ping timeout (42 s by default), which must not block the daemon's cooperative threads.
    static func probeOffPool(_ mountpoint: String) async -> PoolProbe {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: probe(mountpoint)) }
        }
    }
}
