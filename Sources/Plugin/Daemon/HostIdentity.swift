import ConvoyCore
import Foundation

/// Who this daemon is to the other hosts that share its storage (issue 19): written into what it records in shared
/// places (volume records and leases in backup stores), shown by `convoy info`, and named in lease decisions.
///
/// `--host-id` when given; else the id an earlier start recorded in the state (an id must not change under the
/// records that carry it); else one derived from the machine: its hostname and the start of `/etc/machine-id`
/// (`node1-3f2a9c1d…`), readable in logs and distinct between machines that share a hostname; else, without a
/// machine id, a random one. The id is recorded at every start, so it stays the same across restarts.
enum HostIdentity {
    static let configKey = "host-id"
    /// Letters, digits, `.`, `_` and `-`, starting with a letter or digit; up to 63 (a DNS label's length).
    static let maximumLength = 63

    struct Resolved: Equatable {
        var id: String
        /// Set when the flag replaced a recorded id: records under the old one belong to no running host now.
        var replaced: String?
    }

    static func resolve(flag: String?, recorded: String?, machineID: String?,
                        hostname: String) throws(ConvoyError) -> Resolved {
        if let flag {
            let id = try validate(flag)
            return Resolved(id: id, replaced: recorded.flatMap { $0 == id ? nil : $0 })
        }
        if let recorded, (try? validate(recorded)) != nil { return Resolved(id: recorded) }
        return Resolved(id: derived(machineID: machineID, hostname: hostname))
    }

    static func validate(_ id: String) throws(ConvoyError) -> String {
        let bytes = Array(id.utf8)
        let separators: Set<UInt8> = [UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-")]
        guard let first = bytes.first, isLetterOrDigit(first), bytes.count <= maximumLength,
              bytes.allSatisfy({ isLetterOrDigit($0) || separators.contains($0) }) else {
            throw ConvoyError.invalid("--host-id: '\(id)' is not a host id (1 to \(maximumLength) letters, digits, "
                + "'.', '_' or '-', starting with a letter or digit)")
        }
        return id
    }

    private static func isLetterOrDigit(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
    }

    /// `<hostname>-<12 hex digits of the machine id>`, the hostname cut to what an id may hold; a random id when
    /// there is no machine id.
    static func derived(machineID: String?, hostname: String) -> String {
        let digits = String((machineID ?? "").lowercased().filter(\.isHexDigit).prefix(12))
        let random = UUID().uuidString.lowercased().filter(\.isHexDigit)
        let suffix = digits.count == 12 ? digits : String(random.prefix(12))
        let name = String(decoding: hostname.utf8.map { isLetterOrDigit($0) ? $0 : UInt8(ascii: "-") }, as: UTF8.self)
            .trimmingCharacters(in: CharacterSet(charactersIn: "-"))
        let prefix = String(name.prefix(maximumLength - 13))
        return prefix.isEmpty ? "host-" + suffix : prefix + "-" + suffix
    }
}
