/// A file name, relative path, symlink target or xattr name exactly as the kernel holds it: bytes, not text.
///
/// A Linux name may be any bytes but "/" and NUL, and two names that Unicode calls equal (é as one code point, or
/// as e and a combining accent) are two files. Swift's String cannot hold bytes that are not UTF-8 and compares by
/// canonical equivalence, so a tree kept in Strings loses the first kind of name and merges the second. A
/// ByteString compares, hashes and orders by bytes; valid UTF-8 keeps String's storage (short names stay inline,
/// C calls take it as is), anything else is kept as an array.
public struct ByteString: Sendable, Hashable, Comparable, ExpressibleByStringInterpolation, CustomStringConvertible {
    private enum Storage: Sendable {
        case text(String)
        /// Never valid UTF-8 (that is always `text`), so the two cases never hold equal bytes.
        case raw([UInt8])
    }

    private let storage: Storage

    public init(_ text: String) {
        storage = .text(text)
    }

    public init(bytes: some Collection<UInt8>) {
        if let text = String(validating: bytes, as: UTF8.self) {
            storage = .text(text)
        } else {
            storage = .raw(Array(bytes))
        }
    }

    public init(stringLiteral value: String) {
        self.init(value)
    }

    public init(stringInterpolation: DefaultStringInterpolation) {
        self.init(String(stringInterpolation: stringInterpolation))
    }

    public static let empty = ByteString("")

    /// The text, when the bytes are UTF-8 (nil otherwise: no lossy conversion is ever made silently).
    public var text: String? {
        if case .text(let text) = storage { return text }
        return nil
    }

    public var bytes: [UInt8] {
        switch storage {
        case .text(let text): Array(text.utf8)
        case .raw(let raw): raw
        }
    }

    public var count: Int {
        switch storage {
        case .text(let text): text.utf8.count
        case .raw(let raw): raw.count
        }
    }

    public var isEmpty: Bool { count == 0 }

    /// Calls `body` with the bytes in contiguous memory.
    public func withBytes<Value, Failure: Error>(
        _ body: (UnsafeBufferPointer<UInt8>) throws(Failure) -> Value) throws(Failure) -> Value {
        // The standard library's `with…` functions rethrow untyped errors: the typed one travels in a Result.
        let outcome: Result<Value, Failure>
        switch storage {
        case .text(let text):
            let inPlace = text.utf8.withContiguousStorageIfAvailable { Self.capture(body, $0) }
            outcome = inPlace ?? Array(text.utf8).withUnsafeBufferPointer { Self.capture(body, $0) }
        case .raw(let raw):
            outcome = raw.withUnsafeBufferPointer { Self.capture(body, $0) }
        }
        return try outcome.get()
    }

    /// Calls `body` with the bytes as a NUL-terminated C string (cut at an embedded NUL, which ManifestRules and
    /// the kernel never let into a name).
    public func withCString<Value, Failure: Error>(
        _ body: (UnsafePointer<CChar>) throws(Failure) -> Value) throws(Failure) -> Value {
        let outcome: Result<Value, Failure>
        switch storage {
        case .text(let text):
            outcome = text.withCString { Self.capture(body, $0) }
        case .raw(let raw):
            outcome = (raw.map { CChar(bitPattern: $0) } + [0]).withUnsafeBufferPointer { buffer in
                Self.capture(body, buffer.baseAddress.unsafelyUnwrapped)
            }
        }
        return try outcome.get()
    }

    private static func capture<Argument, Value, Failure: Error>(
        _ body: (Argument) throws(Failure) -> Value, _ argument: Argument) -> Result<Value, Failure> {
        do throws(Failure) {
            return .success(try body(argument))
        } catch {
            return .failure(error)
        }
    }

    public func contains(_ byte: UInt8) -> Bool {
        withBytes { $0.contains(byte) }
    }

    public func hasPrefix(_ prefix: ByteString) -> Bool {
        withBytes { bytes in prefix.withBytes { bytes.starts(with: $0) } }
    }

    /// For messages and listings only: the text, with each byte that is not UTF-8 written as `\xNN`.
    public var description: String {
        switch storage {
        case .text(let text): return text
        case .raw(let raw): return Self.escaped(raw)
        }
    }

    private static func escaped(_ raw: [UInt8]) -> String {
        var result = ""
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = raw.makeIterator()
        var position = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                result.unicodeScalars.append(Unicode.UTF8.decode(encoded))
                position += encoded.count
            case .error(let length):
                for byte in raw[position..<(position + length)] {
                    let hex = String(byte, radix: 16, uppercase: true)
                    result += "\\x" + (hex.count == 1 ? "0" + hex : hex)
                }
                position += length
            case .emptyInput:
                return result
            }
        }
    }

    public static func == (lhs: ByteString, rhs: ByteString) -> Bool {
        switch (lhs.storage, rhs.storage) {
        case (.text(let a), .text(let b)): a.utf8.elementsEqual(b.utf8)
        case (.raw(let a), .raw(let b)): a == b
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        withBytes { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// Byte order (what `ls` shows under LC_ALL=C), the order of a directory's entries in a manifest.
    public static func < (lhs: ByteString, rhs: ByteString) -> Bool {
        lhs.withBytes { a in rhs.withBytes { b in a.lexicographicallyPrecedes(b) } }
    }

    public static func + (lhs: ByteString, rhs: ByteString) -> ByteString {
        if case .text(let a) = lhs.storage, case .text(let b) = rhs.storage { return ByteString(a + b) }
        return ByteString(bytes: lhs.bytes + rhs.bytes)
    }
}

extension ByteString {
    private static let slash = UInt8(ascii: "/")

    /// `name` below this relative path: `self/name`, or `name` itself below the root ("").
    public func appending(_ name: ByteString) -> ByteString {
        isEmpty ? name : self + "/" + name
    }

    /// The "/"-separated components, empty ones kept (so a path's problems stay visible to whoever checks them).
    public var components: [ByteString] {
        withBytes { bytes in
            bytes.split(separator: Self.slash, omittingEmptySubsequences: false).map { ByteString(bytes: $0) }
        }
    }

    /// The path up to its last "/" ("" when there is none) and the name after it.
    public var parentAndName: (parent: ByteString, name: ByteString) {
        withBytes { bytes in
            guard let slash = bytes.lastIndex(of: Self.slash) else { return (.empty, self) }
            return (ByteString(bytes: bytes[..<slash]), ByteString(bytes: bytes[(slash + 1)...]))
        }
    }
}
