#if canImport(Glibc)
import Glibc
#endif

/// A UNIX socket's address for bind(2), connect(2) and sendto(2).
enum UnixSocketAddress {
    /// Calls `body` with the address of `path` (its bytes; a leading NUL names an abstract socket) and its length;
    /// nil when the path is too long for sockaddr_un.
    static func with<T>(_ path: [UInt8], _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.enumerated() { buffer[index] = byte }
        }
        // An abstract name's length counts exactly; a path's may include the rest of the (zeroed) array.
        let length = path.first == 0 ? MemoryLayout<sa_family_t>.size + path.count : MemoryLayout<sockaddr_un>.size
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(length)) }
        }
    }
}
