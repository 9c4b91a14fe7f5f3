#if canImport(Glibc)
import Glibc
#endif

/// An open directory, and the way convoy walks trees that containers write (volume data, a lazy volume's layers):
/// every path below it is opened one component at a time from a directory descriptor with `O_NOFOLLOW`, so a
/// symlink a container plants, or swaps in while convoy works, is never followed out of the tree, and what is
/// opened is what is then changed. Relative paths are "/"-separated; "", "." and ".." components are refused.
public final class DirectoryDescriptor: Sendable {
    public let fd: Int32
    /// For messages only: the path it was opened by.
    public let path: String

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// Opens a directory of convoy's own by its path (its last component must not be a symlink).
    public static func open(_ path: String) throws(PosixError) -> DirectoryDescriptor {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw PosixError(errno, "open directory", path) }
        return DirectoryDescriptor(fd: fd, path: path)
    }

    /// The directory at `relative` beneath this one (itself for ""), never following a symlink: ELOOP or ENOTDIR
    /// when a component is a symlink or not a directory.
    public func directory(_ relative: ByteString) throws(PosixError) -> DirectoryDescriptor {
        var current = self
        guard !relative.isEmpty else { return self }
        for name in relative.components {
            guard !name.isEmpty, name != ".", name != ".." else {
                throw PosixError(EINVAL, "open directory", path + "/" + relative.description)
            }
            let fd = name.withCString { openat(current.fd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            guard fd >= 0 else { throw PosixError(errno, "open directory", current.path + "/" + name.description) }
            current = DirectoryDescriptor(fd: fd, path: current.path + "/" + name.description)
        }
        return current
    }

    /// The directory holding `relative` (opened as `directory` does) and the last component's name.
    public func parent(of relative: ByteString)
        throws(PosixError) -> (directory: DirectoryDescriptor, name: ByteString) {
        let (parent, name) = relative.parentAndName
        // A parent "" with a "/" before the name ("/x") is an empty component, refused as `directory` refuses it.
        guard !name.isEmpty, name != ".", name != "..", !parent.isEmpty || relative.count == name.count else {
            throw PosixError(EINVAL, "open", path + "/" + relative.description)
        }
        return (parent.isEmpty ? self : try directory(parent), name)
    }

    /// The status of `name` in this directory, not following it; nil when there is none (or it cannot be read).
    public func status(of name: ByteString) -> stat? {
        var info = stat()
        return name.withCString { fstatat(fd, $0, &info, AT_SYMLINK_NOFOLLOW) } == 0 ? info : nil
    }

    /// The status of the directory itself.
    public func status() throws(PosixError) -> stat {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw PosixError(errno, "inspect", path) }
        return info
    }

    /// A path naming `name` in this directory through the descriptor (`/proc/self/fd/N/name`): for calls that
    /// have no `*at` form (xattrs), used with their `l*` variants so that `name` itself is not followed either.
    public func procPath(of name: ByteString) -> ByteString { ByteString("/proc/self/fd/\(fd)/") + name }
}

/// A failed system call: its errno, what was done, and on what.
public struct PosixError: Error, Sendable, CustomStringConvertible {
    public let code: Int32
    public let operation: String
    public let path: String

    public init(_ code: Int32, _ operation: String, _ path: String) {
        self.code = code
        self.operation = operation
        self.path = path
    }

    /// A component on the way was replaced by a symlink or a file, or is gone: what the container made of the
    /// tree no longer holds the path.
    public var pathIsGone: Bool { code == ENOENT || code == ELOOP || code == ENOTDIR }

    public var description: String {
        "cannot \(operation) \(path): \(String(cString: strerror(code)))"
    }

    public func convoyError(_ kind: ConvoyError.Kind = .driverFailure) -> ConvoyError {
        ConvoyError(kind, description)
    }
}
