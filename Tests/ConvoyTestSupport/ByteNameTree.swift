import CLinux
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A tree whose names are bytes, not text: a directory, a file, a symlink and a hard link named with bytes that
/// are not UTF-8, a symlink whose target is not UTF-8, xattr names that are not UTF-8, and é composed (C3 A9) and
/// decomposed (65 CC 81) as two files, two directories and two xattr names, each with its own content. It is made
/// and read with raw system calls on byte arrays (never through String), so it checks convoy independently.
public enum ByteNameTree {
    static let latin1Directory: [UInt8] = Array("caf".utf8) + [0xE9]
    static let invalidFile: [UInt8] = [0xFF, 0xFE] + Array("name".utf8)
    static let composed: [UInt8] = [0xC3, 0xA9]
    static let decomposed: [UInt8] = [0x65, 0xCC, 0x81]
    static let slash: [UInt8] = [0x2F]

    /// Fills `root`, an existing empty directory.
    public static func populate(_ root: String) throws {
        try makeDirectory(root, latin1Directory)
        try write(root, latin1Directory + slash + invalidFile, "bytes that are not UTF-8")
        try write(root, composed, "composed é")
        try write(root, decomposed, "decomposed é, a different file")
        for (twin, content) in [(composed, "in the composed directory"), (decomposed, "in the decomposed one")] {
            try makeDirectory(root, Array("d".utf8) + twin)
            try write(root, Array("d".utf8) + twin + Array("/f".utf8), content)
        }
        try symlink(root, Array("link".utf8), to: latin1Directory + slash + invalidFile)
        try symlink(root, [0x80] + Array("odd-link".utf8), to: composed)
        // After the composed file in byte order, so the scan sees the file first and records this as its link.
        try hardLink(root, [0xF0] + Array("zz".utf8), to: composed)
        try setAttribute(root, composed, name: Array("user.".utf8) + [0xFF], value: "a name that is not UTF-8")
        try setAttribute(root, composed, name: Array("user.".utf8) + composed, value: "composed")
        try setAttribute(root, composed, name: Array("user.".utf8) + decomposed, value: "decomposed")
        try setAttribute(root, latin1Directory, name: Array("user.dir".utf8), value: "on a directory")
    }

    /// One line per entry below `root`, in byte order: its path with every byte outside printable ASCII as
    /// `\xNN` (so composed and decomposed names differ), type, mode, size, mtime, link target, `user.` xattrs and
    /// file content, and the link count when `linkCounts` (an overlay shows hard links as separate files).
    /// `directoryTimes: false` leaves directories' mtimes out (an overlay changes them as it copies up).
    public static func describe(_ root: String, linkCounts: Bool = true,
                                directoryTimes: Bool = true) throws -> [String] {
        var lines: [String] = []
        try walk(root: root, relative: [], into: &lines, options: (linkCounts, directoryTimes))
        return lines
    }

    /// The names in `directory`, as bytes, in byte order.
    public static func names(in directory: String) throws -> [[UInt8]] {
        try names(in: Array(directory.utf8CString))
    }

    private static func names(in directory: [CChar]) throws -> [[UInt8]] {
        guard let stream = opendir(directory) else { throw FixtureError("cannot open \(String(cString: directory))") }
        defer { closedir(stream) }
        var names: [[UInt8]] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
            if name != [0x2E] && name != [0x2E, 0x2E] { names.append(name) }
        }
        return names.sorted { $0.lexicographicallyPrecedes($1) }
    }

    public static func escaped(_ bytes: [UInt8]) -> String {
        bytes.map { byte in
            (0x20..<0x7F).contains(byte) && byte != 0x5C ? String(UnicodeScalar(byte)) : String(format: "\\x%02X", byte)
        }.joined()
    }

    private static func walk(root: String, relative: [UInt8], into lines: inout [String],
                             options: (linkCounts: Bool, directoryTimes: Bool)) throws {
        for name in try names(in: cPath(root, relative)) {
            let path = relative.isEmpty ? name : relative + slash + name
            let full = cPath(root, path)
            var info = stat()
            guard lstat(full, &info) == 0 else { throw FixtureError("cannot stat \(escaped(path))") }
            let type = info.st_mode & S_IFMT
            let time = type == S_IFDIR && !options.directoryTimes
                ? "-" : "\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
            var fields = [escaped(path), String(type, radix: 8), String(info.st_mode & 0o7777, radix: 8),
                          type == S_IFDIR ? "-" : String(info.st_size), time]
            fields.append(type == S_IFLNK ? escaped(try linkTarget(full)) : "-")
            fields.append(attributes(full).map { "\(escaped($0.name))=\(escaped($0.value))" }.joined(separator: ","))
            fields.append(type == S_IFREG ? escaped(try contents(full)) : "-")
            if options.linkCounts && type != S_IFDIR { fields.append(String(info.st_nlink)) }
            lines.append(fields.joined(separator: "|"))
            if type == S_IFDIR { try walk(root: root, relative: path, into: &lines, options: options) }
        }
    }

    // MARK: Raw calls on byte paths

    /// `root` + "/" + `relative`, NUL-terminated.
    private static func cPath(_ root: String, _ relative: [UInt8]) -> [CChar] {
        let bytes = Array(root.utf8) + (relative.isEmpty ? [] : slash + relative)
        return bytes.map { CChar(bitPattern: $0) } + [0]
    }

    private static func makeDirectory(_ root: String, _ relative: [UInt8]) throws {
        guard mkdir(cPath(root, relative), 0o755) == 0 else { throw FixtureError("mkdir \(escaped(relative))") }
    }

    private static func write(_ root: String, _ relative: [UInt8], _ text: String) throws {
        let fd = open(cPath(root, relative), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FixtureError("create \(escaped(relative))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count else {
            throw FixtureError("write \(escaped(relative))")
        }
    }

    private static func symlink(_ root: String, _ relative: [UInt8], to target: [UInt8]) throws {
        let made = Glibc.symlink(target.map { CChar(bitPattern: $0) } + [0], cPath(root, relative))
        guard made == 0 else { throw FixtureError("symlink \(escaped(relative))") }
    }

    private static func hardLink(_ root: String, _ relative: [UInt8], to target: [UInt8]) throws {
        guard link(cPath(root, target), cPath(root, relative)) == 0 else {
            throw FixtureError("link \(escaped(relative))")
        }
    }

    private static func setAttribute(_ root: String, _ relative: [UInt8], name: [UInt8], value: String) throws {
        let bytes = Array(value.utf8)
        let result = convoy_lsetxattr(cPath(root, relative), name.map { CChar(bitPattern: $0) } + [0], bytes,
                                      bytes.count)
        guard result == 0 else { throw FixtureError("setxattr \(escaped(name)) on \(escaped(relative))") }
    }

    private static func linkTarget(_ path: [CChar]) throws -> [UInt8] {
        var buffer = [CChar](repeating: 0, count: 4097)
        let count = readlink(path, &buffer, 4096)
        guard count >= 0 else { throw FixtureError("readlink") }
        return buffer[0..<count].map { UInt8(bitPattern: $0) }
    }

    private static func contents(_ path: [CChar]) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FixtureError("open \(String(cString: path))") }
        defer { close(fd) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { break }
            result += buffer[0..<count]
        }
        return result
    }

    /// `user.` attributes (what a container can set), by name in byte order.
    private static func attributes(_ path: [CChar]) -> [(name: [UInt8], value: [UInt8])] {
        var list = [CChar](repeating: 0, count: 65536)
        let size = convoy_llistxattr(path, &list, list.count)
        guard size > 0 else { return [] }
        var result: [(name: [UInt8], value: [UInt8])] = []
        for raw in list[0..<size].split(separator: 0) {
            let name = raw.map { UInt8(bitPattern: $0) }
            guard name.starts(with: Array("user.".utf8)) else { continue }
            var value = [UInt8](repeating: 0, count: 65536)
            let length = convoy_lgetxattr(path, Array(raw) + [0], &value, value.count)
            if length >= 0 { result.append((name, Array(value[0..<length]))) }
        }
        return result.sorted { $0.name.lexicographicallyPrecedes($1.name) }
    }
}
