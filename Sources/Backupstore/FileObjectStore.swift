import CLinux
import ConvoyCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `vfs:///path`: objects are files under a directory (a local disk or an NFS mount). Each put writes a temporary
/// file in the target's directory, fsyncs it, renames it over the key and fsyncs the directory, so an object is
/// either whole or absent after a crash or power loss.
public struct FileObjectStore: ObjectStore {
    public let root: String
    /// Deferred puts: written to temporary files, renamed into place by `commitDeferred` after one sync.
    private let pending = PendingRenames()
    public var location: String { "vfs://\(root)" }
    public var existenceChecksAreCheap: Bool { true }

    public init(root: String) throws(ConvoyError) {
        guard root.hasPrefix("/") else { throw .invalid("vfs:// store path '\(root)' must be absolute") }
        // Nothing is created until something is written: listing or reading a store that does not exist must
        // not leave directories behind.
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
    }

    private func path(_ key: String) throws(ConvoyError) -> String {
        try ObjectKey.validate(key)
        return root + "/" + key
    }

    public func put(_ key: String, _ bytes: [UInt8]) async throws(ConvoyError) {
        try await BlockingIOPool.shared.run { () throws(ConvoyError) in try self.putSync(key, bytes) }
    }

    public func putDeferred(_ key: String, _ bytes: [UInt8]) async throws(ConvoyError) {
        let target = try path(key)
        // Written on the calling thread: without a sync, a write is a copy into the page cache (CPU work), and
        // handing it to the I/O pool measured slower.
        let temporary = try writeTemporary(for: target, bytes, sync: false)
        pending.add(temporary: temporary, target: target)
    }

    public func putDeferred(_ key: String, _ object: ObjectBytes) async throws(ConvoyError) {
        let target = try path(key)
        let temporary = try object.withUnsafeBytes { raw throws(ConvoyError) in
            try writeTemporary(for: target, raw, sync: false)
        }
        pending.add(temporary: temporary, target: target)
    }

    /// Written with O_DIRECT on the I/O pool (a direct write waits for the disk): a pack's megabytes then cost no
    /// page-cache pages to allocate and fill. The length is padded to whole aligned blocks and the file truncated
    /// back. Filesystems without O_DIRECT get a buffered write.
    public func putDeferred(_ key: String, aligned buffer: AlignedBuffer) async throws(ConvoyError) {
        let target = try path(key)
        let temporary = try await BlockingIOPool.shared.run { () throws(ConvoyError) -> String in
            try self.writeTemporaryDirect(for: target, buffer)
        }
        pending.add(temporary: temporary, target: target)
    }

    private func writeTemporaryDirect(for target: String, _ buffer: AlignedBuffer) throws(ConvoyError) -> String {
        let (temporary, fd) = try createTemporary(for: target)
        // Switched on after the create: opening with O_DIRECT where it is refused (tmpfs before Linux 6.6) creates
        // the file and then fails, and a second exclusive create would find it there.
        let current = fcntl(fd, F_GETFL)
        var direct = current >= 0 && fcntl(fd, F_SETFL, current | convoy_O_DIRECT) == 0
        let padded = (buffer.count + AlignedBuffer.alignment - 1) / AlignedBuffer.alignment * AlignedBuffer.alignment
        var written = 0
        while written < buffer.count {
            let length = direct ? min(padded, buffer.capacity) - written : buffer.count - written
            let count = write(fd, buffer.memory + written, length)
            if count < 0 && errno == EINTR { continue }
            if count < 0 && errno == EINVAL && direct, UncachedRead.leaveDirectMode(fd) {
                direct = false
                continue
            }
            guard count > 0 else {
                let error = failure("write", temporary)
                close(fd)
                unlink(temporary)
                throw error
            }
            written += count
        }
        if written != buffer.count && ftruncate(fd, off_t(buffer.count)) != 0 {
            let error = failure("truncate", temporary)
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        return temporary
    }

    /// One `syncfs` makes every deferred file's data durable; only then are they renamed into place (a crash
    /// before leaves temporaries for the collector, never a visible half-written block), and a second `syncfs`
    /// makes the renames durable before anything that references the objects is written.
    public func commitDeferred() async throws(ConvoyError) {
        let items = pending.take()
        guard !items.isEmpty else { return }
        EarlyWriteback.shared.flush()
        try syncFilesystem()
        for (temporary, target) in items {
            guard rename(temporary, target) == 0 else {
                let error = failure("rename", temporary)
                for (leftover, _) in items { unlink(leftover) }
                throw error
            }
        }
        try syncFilesystem()
    }

    private func syncFilesystem() throws(ConvoyError) {
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("open", root) }
        defer { close(fd) }
        guard convoy_syncfs(fd) == 0 else { throw failure("sync the filesystem of", root) }
    }

    /// The blocking form, for callers already on a worker thread.
    public func putSync(_ key: String, _ bytes: [UInt8]) throws(ConvoyError) {
        let target = try path(key)
        let temporary = try writeTemporary(for: target, bytes, sync: true)
        guard rename(temporary, target) == 0 else {
            let error = failure("rename", temporary)
            unlink(temporary)
            throw error
        }
        let directory = String(target[..<(target.lastIndex(of: "/") ?? target.endIndex)])
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }

    private func writeTemporary(for target: String, _ bytes: [UInt8], sync: Bool) throws(ConvoyError) -> String {
        let result: Result<String, ConvoyError> = bytes.withUnsafeBytes { raw in
            do throws(ConvoyError) { return .success(try writeTemporary(for: target, raw, sync: sync)) } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Creates a new temporary file beside `target`, opened for writing.
    private func createTemporary(for target: String) throws(ConvoyError) -> (path: String, fd: Int32) {
        let temporary = Self.temporaryName(for: target)
        var fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        // The directory is made only when missing: a `stat` of it before every block was 4 % of a backup's CPU.
        if fd < 0 && errno == ENOENT {
            try Self.makeDirectories(String(target[..<(target.lastIndex(of: "/") ?? target.endIndex)]))
            fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        }
        guard fd >= 0 else { throw failure("create", temporary) }
        return (temporary, fd)
    }

    private func writeTemporary(for target: String, _ bytes: UnsafeRawBufferPointer,
                                sync: Bool) throws(ConvoyError) -> String {
        let (temporary, fd) = try createTemporary(for: target)
        var written = 0
        while written < bytes.count {
            let count = write(fd, bytes.baseAddress.map { $0 + written }, bytes.count - written)
            if count < 0 {
                if errno == EINTR { continue }
                let error = failure("write", temporary)
                close(fd)
                unlink(temporary)
                throw error
            }
            written += count
        }
        if sync && fsync(fd) != 0 {
            let error = failure("fsync", temporary)
            close(fd)
            unlink(temporary)
            throw error
        }
        if !sync {
            EarlyWriteback.shared.start(closing: fd, bytes: bytes.count)
            return temporary
        }
        close(fd)
        return temporary
    }

    public func get(_ key: String) async throws(ConvoyError) -> [UInt8] {
        try await BlockingIOPool.shared.run { () throws(ConvoyError) in try self.getSync(key) }
    }

    public func getSync(_ key: String) throws(ConvoyError) -> [UInt8] {
        let file = try path(key)
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw .notFound("object \(key) not found in \(location)") }
            throw failure("open", file)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure("stat", file) }
        return try readFully(fd, count: Int(info.st_size), at: 0, file: file)
    }

    /// `count` bytes from `offset`, fewer if the file ends first.
    private func readFully(_ fd: Int32, count wanted: Int, at offset: Int,
                           file: String) throws(ConvoyError) -> [UInt8] {
        var readError: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: max(0, wanted)) { buffer, count in
            var done = 0
            while done < wanted {
                let got = pread(fd, buffer.baseAddress.map { $0 + done }, wanted - done, off_t(offset + done))
                if got < 0 && errno == EINTR { continue }
                if got < 0 { readError = errno }
                if got <= 0 { break }
                done += got
            }
            count = done
        }
        if readError != 0 {
            errno = readError
            throw failure("read", file)
        }
        return bytes
    }

    public func getOnce(_ key: String) async throws(ConvoyError) -> ObjectBytes {
        let file = try path(key)
        return try await BlockingIOPool.shared.run { () throws(ConvoyError) -> ObjectBytes in
            do throws(UncachedRead.Failure) {
                return try UncachedRead.contents(of: file)
            } catch {
                if error.code == ENOENT { throw .notFound("object \(key) not found in \(location)") }
                errno = error.code
                throw failure(error.operation, file)
            }
        }
    }

    public func getRange(_ key: String, offset: Int, length: Int) async throws(ConvoyError) -> [UInt8] {
        let file = try path(key)
        return try await BlockingIOPool.shared.run { () throws(ConvoyError) -> [UInt8] in
            let fd = open(file, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                if errno == ENOENT { throw .notFound("object \(key) not found in \(location)") }
                throw failure("open", file)
            }
            defer { close(fd) }
            return try readFully(fd, count: length, at: offset, file: file)
        }
    }

    public func getOnceRange(_ key: String, offset: Int, length: Int) async throws(ConvoyError) -> ObjectBytes {
        let file = try path(key)
        return try await BlockingIOPool.shared.run { () throws(ConvoyError) -> ObjectBytes in
            do throws(UncachedRead.Failure) {
                return try UncachedRead.range(of: file, offset: offset, length: length)
            } catch {
                if error.code == ENOENT { throw .notFound("object \(key) not found in \(location)") }
                errno = error.code
                throw failure(error.operation, file)
            }
        }
    }

    /// On the I/O pool: after the page cache is dropped, the `lstat` reads the directory from disk, and done on
    /// the calling thread it stalled one of the two cooperative threads (an incremental backup took longer while
    /// using less CPU).
    public func exists(_ key: String) async throws(ConvoyError) -> Bool {
        let file = try path(key)
        return try await BlockingIOPool.shared.run { () -> Bool in
            var info = stat()
            return lstat(file, &info) == 0
        }
    }

    /// A few I/O-pool jobs `lstat` the keys between them, instead of one pool round trip per key: a copy into
    /// an empty store asks about every block of the backup.
    public func absent(_ keys: [String]) async throws(ConvoyError) -> Set<String> {
        let files = try keys.map { key throws(ConvoyError) in (key, try path(key)) }
        let stripes = max(1, min(4, files.count / 256))
        let missingParts: [Set<String>] = await withTaskGroup(of: Set<String>.self) { group in
            for stripe in 0..<stripes {
                group.addTask {
                    let mine = stride(from: stripe, to: files.count, by: stripes).map { files[$0] }
                    do {
                        return try await BlockingIOPool.shared.run { () -> Set<String> in
                            var info = stat()
                            return Set(mine.filter { lstat($0.1, &info) != 0 }.map(\.0))
                        }
                    } catch {
                        return Set(mine.map(\.0))  // unknown counts as missing: copying a block twice is harmless
                    }
                }
            }
            var all: [Set<String>] = []
            for await part in group { all.append(part) }
            return all
        }
        return missingParts.reduce(into: Set<String>()) { $0.formUnion($1) }
    }

    public func delete(_ keys: [String]) async throws(ConvoyError) {
        for key in keys {
            let file = try path(key)
            if unlink(file) != 0 && errno != ENOENT { throw failure("delete", file) }
        }
    }

    func failure(_ operation: String, _ path: String) -> ConvoyError {
        let text = String(cString: strerror(errno))
        return ConvoyError(.unavailable, "cannot \(operation) \(path) in store \(location): \(text)")
    }

    static func makeDirectories(_ path: String) throws(ConvoyError) {
        var info = stat()
        if stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR { return }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try makeDirectories(String(path[..<slash]))
        }
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw ConvoyError(.unavailable, "cannot create directory \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// Temporary files waiting for `commitDeferred`, shared by copies of the store value.
final class PendingRenames: Sendable {
    private let items = Mutex<[(String, String)]>([])

    func add(temporary: String, target: String) { items.withLock { $0.append((temporary, target)) } }

    func take() -> [(String, String)] {
        items.withLock { current in
            defer { current.removeAll() }
            return current
        }
    }
}
