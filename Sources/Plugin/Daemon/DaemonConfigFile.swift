import ConvoyCore
import Foundation

/// `/etc/convoy/daemon.json` (or `--config-file`): every `convoy daemon` flag as a key of one JSON object, named
/// as the flag without its dashes (`"plugin-socket"`, `"metrics-address"`). A flag given on the command line wins
/// over the file; a list given there replaces the file's list. Unknown keys are refused, so a misspelt setting
/// is an error at start, not a default silently kept.
public struct DaemonConfigFile: Sendable, Equatable {
    public static let defaultPath = "/etc/convoy/daemon.json"

    public var strings: [String: String] = [:]
    public var lists: [String: [String]] = [:]
    public var maps: [String: [String: String]] = [:]
    public var flags: [String: Bool] = [:]
    public var numbers: [String: Double] = [:]

    /// The keys by the type of their value: an object for settings given as KEY=VALUE pairs on the command line.
    public static let stringKeys: Set<String> = [
        "root", "socket", "plugin-socket", "s3-endpoint", "fuse-cache-size", "socket-group", "host-id", "csi-socket",
        "csi-snapshot-dest", "metrics-address", "log-level",
    ]
    public static let listKeys: Set<String> = ["drivers", "backup-destinations", "append-only", "browse-root"]
    public static let mapKeys: Set<String> = ["driver-opts", "store-password-file"]
    public static let flagKeys: Set<String> = [
        "ignore-docker-delete", "fuse-disk-cache", "allow-any-backup-destination", "allow-any-browse-target",
        "csi-expand-on-node", "metrics-per-volume",
    ]
    public static let numberKeys: Set<String> = [
        "fuse-read-ahead", "hydration-pause", "host-lease-ttl", "fuse-handoff-timeout",
        "s3-concurrency",
    ]

    public init() {}

    /// The file at `path`; none when `path` is the default and does not exist (a named file must exist).
    public static func load(_ path: String?) throws(ConvoyError) -> DaemonConfigFile {
        let file = path ?? defaultPath
        guard let data = FileManager.default.contents(atPath: file) else {
            if path == nil, !FileManager.default.fileExists(atPath: file) { return DaemonConfigFile() }
            throw ConvoyError.invalid("--config-file: cannot read \(file)")
        }
        return try parse(data, source: file)
    }

    public static func parse(_ data: Data, source: String) throws(ConvoyError) -> DaemonConfigFile {
        let object: [String: Value]
        do {
            object = try JSONDecoder().decode([String: Value].self, from: data)
        } catch {
            throw ConvoyError.invalid("""
                \(source) is not one JSON object of settings (strings, numbers, true/false, lists and objects of \
                strings): \(error)
                """)
        }
        var file = DaemonConfigFile()
        for (key, value) in object.sorted(by: { $0.key < $1.key }) {
            let wrong = { (expected: String) in ConvoyError.invalid("\(source): \"\(key)\" must be \(expected)") }
            switch value {
            case .string(let text) where stringKeys.contains(key): file.strings[key] = text
            case .list(let list) where listKeys.contains(key): file.lists[key] = list
            case .map(let map) where mapKeys.contains(key): file.maps[key] = map
            case .flag(let flag) where flagKeys.contains(key): file.flags[key] = flag
            case .number(let number) where numberKeys.contains(key): file.numbers[key] = number
            default:
                if stringKeys.contains(key) { throw wrong("a string") }
                if listKeys.contains(key) { throw wrong("a list of strings") }
                if mapKeys.contains(key) { throw wrong("an object of strings") }
                if flagKeys.contains(key) { throw wrong("true or false") }
                if numberKeys.contains(key) { throw wrong("a number") }
                let known = stringKeys.union(listKeys).union(mapKeys).union(flagKeys).union(numberKeys).sorted()
                throw ConvoyError.invalid("""
                    \(source): unknown setting "\(key)" (known: \(known.joined(separator: ", ")))
                    """)
            }
        }
        return file
    }

    /// One setting's value as JSON has it (JSONDecoder tells true from 1, which JSONSerialization does not).
    enum Value: Decodable {
        case string(String), list([String]), map([String: String]), flag(Bool), number(Double)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let flag = try? container.decode(Bool.self) { self = .flag(flag); return }
            if let number = try? container.decode(Double.self) { self = .number(number); return }
            if let text = try? container.decode(String.self) { self = .string(text); return }
            if let list = try? container.decode([String].self) { self = .list(list); return }
            self = .map(try container.decode([String: String].self))
        }
    }
}
