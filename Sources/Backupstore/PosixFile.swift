import ConvoyCore
import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// POSIX helpers for walking and recreating trees, each failure naming its path.
public enum PosixFile {
    static func errorText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

    public static func failure(_ operation: String, _ path: String, _ code: Int32 = errno) -> ConvoyError {
        ConvoyError(.driverFailure, "cannot \(operation) \(path): \(errorText(code))")
    }

    /// A directory's entries with their `d_type`, without `.` and `..`; nil when it cannot be opened (errno set).
    public static func entries(in directory: String) -> [(name: String, type: UInt8)]? {
        guard let handle = opendir(directory) else { return nil }
        defer { closedir(handle) }
        var entries: [(name: String, type: UInt8)] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { entries.append((name, entry.pointee.d_type)) }
        }
        return entries
    }

    /// Extended attributes of a path (not following symlinks), values as raw bytes. Callers walking a tree a
    /// container writes pass `DirectoryDescriptor.procPath(of:)`, so that no component on the way is followed.
    static func xattrs(_ path: ByteString) throws(PosixError) -> [ByteString: [UInt8]] {
        try path.withCString { path throws(PosixError) in
            let size = convoy_llistxattr(path, nil, 0)
            if size < 0 {
                if errno == ENOTSUP || errno == ENODATA { return [:] }
                throw PosixError(errno, "list xattrs of", String(cString: path))
            }
            if size == 0 { return [:] }
            var names = [CChar](repeating: 0, count: size)
            let got = convoy_llistxattr(path, &names, size)
            guard got >= 0 else { throw PosixError(errno, "list xattrs of", String(cString: path)) }
            var result: [ByteString: [UInt8]] = [:]
            for raw in names[0..<got].split(separator: 0) {
                let name = ByteString(bytes: raw.map { UInt8(bitPattern: $0) })
                let length = name.withCString { convoy_lgetxattr(path, $0, nil, 0) }
                guard length >= 0 else { continue }
                var value = [UInt8](repeating: 0, count: length)
                let read = name.withCString { convoy_lgetxattr(path, $0, &value, length) }
                if read >= 0 { result[name] = Array(value[0..<read]) }
            }
            return result
        }
    }

    /// Writes all of `bytes` at `offset`.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: UInt64,
                                path: String) throws(ConvoyError) {
        var done = 0
        while done < bytes.count {
            let count = pwrite(fd, bytes.baseAddress.map { $0 + done }, bytes.count - done, off_t(offset) + off_t(done))
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("write", path)
            }
            done += count
        }
    }

    /// Writes all of `bytes` at `offset` (the array form: the buffer's closure cannot throw a typed error).
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: UInt64, path: String) throws(ConvoyError) {
        let result: Result<Void, ConvoyError> = bytes.withUnsafeBytes { raw in
            do throws(ConvoyError) { try writeAll(fd, raw, at: offset, path: path) } catch { return .failure(error) }
            return .success(())
        }
        try result.get()
    }

    /// Reads up to `count` bytes at `offset` into `buffer` starting at `index`; returns the number read.
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64,
                     path: String) throws(ConvoyError) -> Int {
        var done = 0
        while done < buffer.count {
            let count = pread(fd, buffer.baseAddress.map { $0 + done }, buffer.count - done,
                              off_t(offset) + off_t(done))
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("read", path)
            }
            if count == 0 { break }
            done += count
        }
        return done
    }

    /// The data regions of a file (holes skipped), as (offset, length). Filesystems without SEEK_DATA report one
    /// region covering the file.
    static func dataRegions(_ fd: Int32, size: UInt64) -> [(UInt64, UInt64)] {
        guard size > 0 else { return [] }
        var regions: [(UInt64, UInt64)] = []
        var position: off_t = 0
        while UInt64(position) < size {
            let data = convoy_seek_data(fd, position)
            if data < 0 {
                if errno == ENXIO { break }  // only a hole remains
                return [(0, size)]
            }
            var hole = convoy_seek_hole(fd, data)
            if hole < 0 { hole = off_t(size) }
            let end = min(UInt64(hole), size)
            if end > UInt64(data) { regions.append((UInt64(data), end - UInt64(data))) }
            position = off_t(end)
        }
        return regions
    }
}
