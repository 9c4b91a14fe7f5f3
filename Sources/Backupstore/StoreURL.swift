import ConvoyCore

/// Backup destinations and backup URLs (the store under a destination: "The backup store (format version 2)" in
/// docs/design.md): `vfs:///abs/path`, `s3://bucket@region/path`; a backup is `<dest>?backup=<id>&volume=<name>`.
public enum StoreLocation: Sendable, Equatable {
    case directory(path: String)
    case s3(bucket: String, region: String, prefix: String)

    public static func parse(_ text: String) throws(ConvoyError) -> StoreLocation {
        if text.hasPrefix("vfs://") {
            let path = String(text.dropFirst("vfs://".count))
            guard path.hasPrefix("/") else { throw .invalid("'\(text)': a vfs destination is vfs:///absolute/path") }
            let components = path.split(separator: "/")
            guard !components.contains(where: { $0 == ".." || $0 == "." }) else {
                throw .invalid("'\(text)': the path must not contain '.' or '..'")
            }
            return .directory(path: "/" + components.joined(separator: "/"))
        }
        if text.hasPrefix("s3://") {
            let rest = text.dropFirst("s3://".count)
            let hostPart = rest.prefix { $0 != "/" }
            let path = rest.dropFirst(hostPart.count).split(separator: "/").joined(separator: "/")
            let pieces = hostPart.split(separator: "@", omittingEmptySubsequences: false)
            guard pieces.count == 2, !pieces[0].isEmpty, !pieces[1].isEmpty else {
                throw .invalid("'\(text)': an S3 destination is s3://bucket@region/path")
            }
            guard !path.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
                throw .invalid("'\(text)': the path must not contain '.' or '..'")
            }
            return .s3(bucket: String(pieces[0]), region: String(pieces[1]), prefix: path)
        }
        throw .invalid("'\(text)' is not a backup destination: use vfs:///path or s3://bucket@region/path")
    }

    public var url: String {
        switch self {
        case .directory(let path): "vfs://\(path)"
        case .s3(let bucket, let region, let prefix): "s3://\(bucket)@\(region)/\(prefix)"
        }
    }
}

public struct BackupURL: Sendable, Equatable {
    public var destination: StoreLocation
    public var backupID: String
    public var volume: String

    public init(destination: StoreLocation, backupID: String, volume: String) {
        self.destination = destination
        self.backupID = backupID
        self.volume = volume
    }

    public static func parse(_ text: String) throws(ConvoyError) -> BackupURL {
        guard let question = text.firstIndex(of: "?") else {
            throw .invalid("'\(text)' is not a backup URL: expected <dest>?backup=<id>&volume=<name>")
        }
        let destination = try StoreLocation.parse(String(text[..<question]))
        var fields: [String: String] = [:]
        for pair in text[text.index(after: question)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        guard let id = fields["backup"], let volume = fields["volume"] else {
            throw .invalid("'\(text)' is not a backup URL: it needs both backup= and volume=")
        }
        try ObjectName.validate(id, kind: "backup")
        try ObjectName.validate(volume)
        return BackupURL(destination: destination, backupID: id, volume: volume)
    }

    public var url: String { "\(destination.url)?backup=\(backupID)&volume=\(volume)" }
}
