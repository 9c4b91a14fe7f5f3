import CLinux
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Builds test trees with every kind of entry and describes trees independently of the code under test, so a
/// restored or mounted tree can be compared with its source entry by entry. A target of its own because test
/// targets cannot depend on each other.
public enum TreeFixture {
    public static func temporaryDirectory(_ label: String) throws -> String {
        let path = "/tmp/cvb-\(label)-" + String(UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    public static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for index in words.indices { words[index] = generator.next() }
        }
        return bytes
    }

    public static func write(_ path: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// A tree with directories (one empty), regular files (small, large random, compressible), a symlink, a
    /// dangling symlink, a hard link pair, a fifo, a sparse file, xattrs, odd modes, owners and a name with spaces.
    public static func makeRichTree(at root: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/dir/sub", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
        try write(root + "/small.txt", Array("hello convoy\n".utf8))
        try write(root + "/dir/random.bin", randomBytes(3 << 20, seed: 1))
        try write(root + "/dir/sub/text.log",
                  Array(String(repeating: "log line with some words\n", count: 100_000).utf8))
        try write(root + "/name with spaces", Array("spaces".utf8))
        try write(root + "/empty-file", [])
        try fm.createSymbolicLink(atPath: root + "/link-to-small", withDestinationPath: "small.txt")
        try fm.createSymbolicLink(atPath: root + "/dangling", withDestinationPath: "/nonexistent/target")
        try write(root + "/dir/hard-a", Array("shared inode".utf8))
        guard link(root + "/dir/hard-a", root + "/hard-b") == 0 else { throw FixtureError("link failed") }
        guard mkfifo(root + "/dir/pipe", 0o640) == 0 else { throw FixtureError("mkfifo failed") }
        // Sparse: 64 MiB apparent, two 1 MiB data islands.
        let fd = open(root + "/sparse.img", O_WRONLY | O_CREAT, 0o644)
        guard fd >= 0 else { throw FixtureError("open sparse failed") }
        let island = randomBytes(1 << 20, seed: 2)
        island.withUnsafeBytes { _ = pwrite(fd, $0.baseAddress, $0.count, 8 << 20) }
        island.withUnsafeBytes { _ = pwrite(fd, $0.baseAddress, $0.count, 40 << 20) }
        ftruncate(fd, 64 << 20)
        close(fd)
        let value = Array("blue".utf8)
        guard convoy_lsetxattr(root + "/small.txt", "user.colour", value, value.count) == 0 else {
            throw FixtureError("setxattr failed: \(errno)")
        }
        guard convoy_lsetxattr(root + "/dir", "user.kind", value, value.count) == 0 else {
            throw FixtureError("setxattr failed")
        }
        chmod(root + "/dir/sub/text.log", 0o600)
        chmod(root + "/dir/sub", 0o2750)
        chmod(root + "/small.txt", 0o4755)
        lchown(root + "/dir/random.bin", 1234, 5678)
        lchown(root + "/dangling", 4321, 8765)
        // Times in the past with nanoseconds, set last.
        var times = [timespec(tv_sec: 1_600_000_000, tv_nsec: 123_456_789),
                     timespec(tv_sec: 1_600_000_000, tv_nsec: 123_456_789)]
        utimensat(AT_FDCWD, root + "/dir/random.bin", &times, 0)
        utimensat(AT_FDCWD, root + "/dangling", &times, AT_SYMLINK_NOFOLLOW)
        utimensat(AT_FDCWD, root + "/empty", &times, 0)
    }

    public struct Facts: Equatable, CustomStringConvertible {
        public var type: mode_t
        public var mode: mode_t
        public var uid: uid_t
        public var gid: gid_t
        public var size: Int
        public var mtime: Int
        public var mtimeNanoseconds: Int
        public var content: String
        public var linkTarget: String
        public var xattrs: [String: [UInt8]]
        public var links: Int

        public var description: String {
            "type \(String(type, radix: 8)) mode \(String(mode, radix: 8)) \(uid):\(gid) size \(size) "
                + "mtime \(mtime).\(mtimeNanoseconds) content \(content.prefix(12)) link \(linkTarget) "
                + "xattrs \(xattrs.keys.sorted()) nlink \(links)"
        }
    }

    /// Relative path → facts, for every entry including the root (""). Directory mtimes included.
    public static func describe(_ root: String) throws -> [String: Facts] {
        var result: [String: Facts] = [:]
        func visit(_ relative: String) throws {
            let path = relative.isEmpty ? root : root + "/" + relative
            var info = stat()
            guard lstat(path, &info) == 0 else { throw FixtureError("lstat \(path)") }
            let type = info.st_mode & S_IFMT
            var content = ""
            var target = ""
            if type == S_IFREG {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                content = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
            } else if type == S_IFLNK {
                target = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? ""
            }
            result[relative] = Facts(
                type: type, mode: info.st_mode & 0o7777, uid: info.st_uid, gid: info.st_gid,
                size: type == S_IFREG ? Int(info.st_size) : 0, mtime: info.st_mtim.tv_sec,
                mtimeNanoseconds: info.st_mtim.tv_nsec, content: content, linkTarget: target,
                xattrs: xattrs(path), links: type == S_IFDIR ? 0 : Int(info.st_nlink))
            if type == S_IFDIR {
                for name in try FileManager.default.contentsOfDirectory(atPath: path).sorted() {
                    try visit(relative.isEmpty ? name : relative + "/" + name)
                }
            }
        }
        try visit("")
        return result
    }

    public static func xattrs(_ path: String) -> [String: [UInt8]] {
        let size = convoy_llistxattr(path, nil, 0)
        guard size > 0 else { return [:] }
        var names = [CChar](repeating: 0, count: size)
        _ = convoy_llistxattr(path, &names, size)
        var result: [String: [UInt8]] = [:]
        for raw in names.split(separator: 0) {
            let name = String(decoding: raw.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            var value = [UInt8](repeating: 0, count: 4096)
            let count = convoy_lgetxattr(path, name, &value, value.count)
            if count >= 0 { result[name] = Array(value[0..<count]) }
        }
        return result
    }

    public static func allocatedBytes(_ path: String) -> Int {
        var info = stat()
        return lstat(path, &info) == 0 ? Int(info.st_blocks) * 512 : -1
    }

    public static func inode(_ path: String) -> UInt64 {
        var info = stat()
        return lstat(path, &info) == 0 ? UInt64(info.st_ino) : 0
    }
}

/// xorshift: the same numbers on every run, for test data and random probes.
public struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    public mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}

public struct FixtureError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
