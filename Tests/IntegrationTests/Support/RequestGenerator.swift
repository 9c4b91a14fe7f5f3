import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Invalid requests for both APIs, from a seed.
struct RequestGenerator {
    struct Request {
        var plugin: Bool
        var method: String
        var path: String
        var body: [UInt8]
        var headers: [String: String]
        var overLimit: Bool
        var takesNoInput: Bool {
            plugin && method == "POST"
                && ["/Plugin.Activate", "/VolumeDriver.List", "/VolumeDriver.Capabilities"].contains(path) && !overLimit
        }
        var summary: String {
            "\(method) \(path) (\(body.count) bytes: \(String(decoding: body.prefix(80), as: UTF8.self)))"
        }
    }

    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func random(_ bound: Int) -> Int {
        // splitmix64
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(max(bound, 1)))
    }

    mutating func pick<T>(_ items: [T]) -> T { items[random(items.count)] }

    static let pluginMethods = ["Plugin.Activate", "VolumeDriver.Create", "VolumeDriver.Remove", "VolumeDriver.Mount",
                                "VolumeDriver.Unmount", "VolumeDriver.Path", "VolumeDriver.Get",
                                "VolumeDriver.List", "VolumeDriver.Capabilities", "VolumeDriver.Nope", "Plugin.X"]
    /// Methods that must never get a valid body: anything valid there would change state.
    static let mutating = ["VolumeDriver.Create", "VolumeDriver.Remove", "VolumeDriver.Mount", "VolumeDriver.Unmount"]

    /// A name no volume may have (or one that exists nowhere, for reads). `required`: never null or another
    /// type (the client API makes a name up for a create without one, a valid request).
    mutating func badName(required: Bool = false) -> JSONValue {
        switch random(required ? 6 : 9) {
        case 0: return .string("")
        case 1: return .string("../etc")
        case 2: return .string("a/b")
        case 3: return .string(String(repeating: "x", count: 300 + random(5000)))
        case 4: return .raw(Array("\"\\ud800bad\"".utf8))  // a lone surrogate
        case 5: return .raw([0x22, 0xFF, 0xFE, 0x61, 0x22])  // not UTF-8
        case 6: return .null
        case 7: return .number(random(1 << 30))
        default: return .array([.string("keep")])
        }
    }

    mutating func value(depth: Int = 0) -> JSONValue {
        switch random(depth > 3 ? 5 : 8) {
        case 0: return .null
        case 1: return .bool(random(2) == 0)
        case 2: return .number(random(Int(Int32.max)) - 1000)
        case 3: return .string(String(repeating: pick(["a", "é", "\u{0}", "💾", "%"]), count: random(64)))
        case 4: return .raw(Array("1e999999".utf8))
        case 5: return .array((0..<random(4)).map { _ in value(depth: depth + 1) })
        case 6: return .object((0..<random(4)).map { _ in (pick(["Name", "Opts", "ID", "Size", "x"]),
                                                             value(depth: depth + 1)) })
        default: return .raw(Array(repeating: UInt8(ascii: "["), count: 1 + random(100_000)))
        }
    }

    mutating func body(for method: String, nameRequired: Bool = false) -> (bytes: [UInt8], overLimit: Bool) {
        switch random(12) {
        case 0: return (Array(repeating: UInt8(ascii: " "), count: (1 << 20) + 1 + random(1 << 16)), true)
        case 1:
            // Random bytes, never a JSON object: an empty or blank body means `{}`, which is a valid request (a
            // create with a generated name), so the first byte is neither blank nor `{`.
            let blankOrBrace: Set<UInt8> = [0x20, 0x0A, 0x0D, 0x09, UInt8(ascii: "{")]
            var first = UInt8(random(256))
            while blankOrBrace.contains(first) { first = UInt8(random(256)) }
            return ([first] + (0..<random(255)).map { _ in UInt8(random(256)) }, false)
        case 2: return (Array("{\"Name\":".utf8) + Array(repeating: UInt8(ascii: "{"), count: random(200_000)), false)
        case 3:
            // At the limit exactly: a string filling the body.
            let filler = (1 << 20) - 12
            return (Array("{\"Name\":\"".utf8) + Array(repeating: UInt8(ascii: "a"), count: filler) + Array("\"}".utf8)
                    + [], false)
        default:
            var fields: [(String, JSONValue)] = [("Name", badName(required: nameRequired))]
            if random(2) == 0 { fields.append(("Opts", random(2) == 0 ? value() : .object([("backup", badName())]))) }
            if random(2) == 0 { fields.append(("ID", value())) }
            if !Self.mutating.contains(method), random(3) == 0 { fields = [(pick(["Name", "x"]), value())] }
            return (JSONValue.object(fields).bytes, false)
        }
    }

    static let clientRoutes: [(String, String)] = [
        ("GET", "/v1/volumes/{bad}"), ("DELETE", "/v1/volumes/{bad}"), ("POST", "/v1/volumes/{bad}/mount"),
        ("POST", "/v1/volumes/{bad}/umount"), ("POST", "/v1/volumes"), ("POST", "/v1/snapshots"),
        ("DELETE", "/v1/snapshots/{bad}"), ("POST", "/v1/backups"), ("GET", "/v1/backups"),
        ("DELETE", "/v1/backups"), ("GET", "/v1/jobs/{bad}"), ("PUT", "/v1/volumes"), ("GET", "/v1/nowhere/{bad}"),
        ("POST", "/v1/backups/mount"), ("GET", "/v1/volumes/{bad}/hydration"),
    ]

    mutating func next() -> Request {
        if random(2) == 0 {
            let method = pick(Self.pluginMethods)
            let body = body(for: method)
            return Request(plugin: true, method: pick(["POST", "POST", "POST", "GET"]), path: "/" + method,
                           body: body.bytes, headers: ["Accept": "application/vnd.docker.plugins.v1.2+json"],
                           overLimit: body.overLimit)
        }
        let (method, template) = pick(Self.clientRoutes)
        let name = pick(["..", "%2e%2e", "a%2Fb", "%FF%FE", String(repeating: "n", count: 400), "no-such-volume",
                         "%00", "keep%20"])
        let body = body(for: "VolumeDriver.Create", nameRequired: true)
        return Request(plugin: false, method: method, path: template.replacingOccurrences(of: "{bad}", with: name)
                       + pick(["", "?dest=%FF", "?volume=../x", "?wait=1e308"]), body: body.bytes,
                       headers: ["Content-Type": "application/json"], overLimit: body.overLimit)
    }

    /// A slow, truncated or half-closed connection: headers sent in pieces, a body shorter than announced, then
    /// the write side shut or the connection dropped. The daemon must neither crash nor hang on it.
    mutating func abuseAConnection(_ socketPath: String) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in socketPath.utf8.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { return }
        let head = Array("POST /VolumeDriver.Get HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"Na".utf8)
        let cut = random(head.count)
        for piece in [head[..<cut], head[cut...]] {
            _ = piece.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            usleep(UInt32(random(3000)))
        }
        if random(2) == 0 { shutdown(fd, Int32(SHUT_WR)) }
    }
}

/// JSON text built by hand, so that invalid forms (raw bytes, overflowing numbers) can be written too.
indirect enum JSONValue {
    case null
    case bool(Bool)
    case number(Int)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])
    case raw([UInt8])

    var bytes: [UInt8] {
        switch self {
        case .null: return Array("null".utf8)
        case .bool(let value): return Array((value ? "true" : "false").utf8)
        case .number(let value): return Array(String(value).utf8)
        case .string(let value):
            let data = (try? JSONSerialization.data(withJSONObject: [value])) ?? Data("[\"\"]".utf8)
            return Array(data.dropFirst().dropLast())
        case .array(let items):
            return Array("[".utf8) + items.map(\.bytes).joined(separator: Array(",".utf8)) + Array("]".utf8)
        case .object(let fields):
            let inner = fields.map { JSONValue.string($0.0).bytes + Array(":".utf8) + $0.1.bytes }
            return Array("{".utf8) + inner.joined(separator: Array(",".utf8)) + Array("}".utf8)
        case .raw(let bytes): return bytes
        }
    }
}
