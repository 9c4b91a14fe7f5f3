/// Names of volumes, snapshots and backups. Convoy's rule `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`, at most 64 characters.
/// Because `/` is never allowed and a name cannot start with `.`, a valid name is always a single, non-special
/// path component: joining it to a root can never escape that root.
public enum ObjectName {
    public static let maxLength = 64

    @discardableResult
    public static func validate(_ name: String, kind: String = "volume") throws(ConvoyError) -> String {
        let bytes = Array(name.utf8)
        guard bytes.count >= 2 else {
            throw .invalid("invalid \(kind) name '\(name)': it must be 2 to \(maxLength) characters long")
        }
        guard bytes.count <= maxLength else {
            throw .invalid("invalid \(kind) name '\(name.prefix(20))…' (\(bytes.count) characters): "
                + "at most \(maxLength) are allowed")
        }
        guard isAlphanumeric(bytes[0]) else {
            throw .invalid("invalid \(kind) name '\(name)': it must start with a letter or digit")
        }
        for byte in bytes.dropFirst() where !(isAlphanumeric(byte) || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")) {
            throw .invalid("invalid \(kind) name '\(name)': only letters, digits, '_', '.' and '-' are allowed")
        }
        return name
    }

    /// `volume-<16 hex>` and the like, as Convoy generated them.
    public static func generate(prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() as UInt64
        let hex = String(value, radix: 16)
        return prefix + "-" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
