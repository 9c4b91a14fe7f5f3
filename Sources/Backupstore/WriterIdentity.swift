import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Who writes to a store, told apart well enough that one writer never takes another's lease or temporary file
/// for a dead one's. A hostname and a pid are not enough: cloned VMs and containers share hostnames, containers
/// reuse pids in their own namespaces, and a pid is reused after its process ends. So a writer is this boot of a
/// kernel (`boot_id`, random at each boot: two machines never share one), this pid namespace, and a pid with its
/// process's start time; the machine id (`/etc/machine-id`, empty where there is none) is kept for messages and as
/// one more check. A writer is judged dead here only when all of those say so; any other writer's lease ends by
/// its expiry.
public struct WriterIdentity: Codable, Equatable, Sendable {
    public var machine: String
    public var boot: String
    public var pidNamespace: String
    public var pid: Int32
    /// The process's start, in clock ticks after boot (`/proc/<pid>/stat`, field 22).
    public var started: UInt64
    /// For messages only.
    public var host: String

    /// This process.
    public static let current = WriterIdentity(
        machine: firstLine("/etc/machine-id") ?? "", boot: firstLine("/proc/sys/kernel/random/boot_id") ?? "",
        pidNamespace: namespace(), pid: getpid(), started: startTime(of: getpid()) ?? 0, host: hostName())

    /// Whether this writer certainly no longer runs: it ran on this machine, in this boot, in this pid namespace,
    /// and its pid is gone or belongs to a process started since.
    public var isCertainlyDead: Bool {
        let me = Self.current
        guard !boot.isEmpty, boot == me.boot, machine == me.machine, pidNamespace == me.pidNamespace else {
            return false
        }
        guard let now = Self.startTime(of: pid) else { return true }
        return now != started
    }

    /// A form for file names (letters, digits, `_` and `.` only): machine and boot (12 hex digits each, zeros
    /// for none), pid namespace, pid and start time, `_`-separated.
    public var tag: String {
        "\(Self.short(machine))\(Self.short(boot))_\(pidNamespace)_\(pid)_\(started)"
    }

    /// An id's first 12 hex digits, padded with zeros.
    static func short(_ id: String) -> String {
        let digits = String(id.filter(\.isHexDigit).prefix(12)).lowercased()
        return digits + String(repeating: "0", count: 12 - digits.count)
    }

    /// The identity a `tag` names, as far as it does (host unknown); nil for any other form.
    public static func parse(tag: String) -> WriterIdentity? {
        let parts = tag.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0].count == 24, parts[0].allSatisfy(\.isHexDigit),
              parts[1].allSatisfy(\.isNumber), !parts[1].isEmpty,
              let pid = Int32(parts[2]), let started = UInt64(parts[3]) else { return nil }
        return WriterIdentity(machine: String(parts[0].prefix(12)), boot: String(parts[0].suffix(12)),
                              pidNamespace: String(parts[1]), pid: pid, started: started, host: "")
    }

    /// Whether `tag` names a writer that certainly no longer runs (see `isCertainlyDead`); false for a tag of
    /// another form (an older convoy's: then only its age counts).
    public static func tagIsCertainlyDead(_ tag: String) -> Bool {
        guard var writer = parse(tag: tag) else { return false }
        let me = current
        // The tag holds 12 digits of each id: compare those.
        guard !me.boot.isEmpty, writer.machine == short(me.machine), writer.boot == short(me.boot) else {
            return false
        }
        (writer.machine, writer.boot) = (me.machine, me.boot)
        return writer.isCertainlyDead
    }

    static func startTime(of pid: Int32) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name (which may hold spaces): state is field 3, start time field 22.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }

    private static func firstLine(_ path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let line = text.split(separator: "\n").first.map(String.init) ?? ""
        return line.isEmpty ? nil : line
    }

    private static func namespace() -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let count = readlink("/proc/self/ns/pid", &buffer, buffer.count - 1)
        guard count > 0 else { return "0" }
        let text = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(text.filter(\.isNumber))
    }

    private static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
