import Foundation

/// A minimal element tree of an S3 XML answer: names without namespace, text content, children. S3's documents
/// are small (a listing page is at most 1,000 entries), so a tree is simpler than a streaming state machine.
struct XMLTree: Sendable {
    var name: String
    var text: String
    var children: [XMLTree]

    func child(_ name: String) -> XMLTree? { children.first { $0.name == name } }
    func children(_ name: String) -> [XMLTree] { children.filter { $0.name == name } }
    /// The text of the first child so named.
    func value(_ name: String) -> String? { child(name)?.text }
    /// The first element so named at any depth, this one included (EC2's error documents nest differently
    /// by service and server).
    func descendant(_ name: String) -> XMLTree? {
        if self.name == name { return self }
        for child in children { if let found = child.descendant(name) { return found } }
        return nil
    }

    /// nil when the data is not well-formed XML, declares a DOCTYPE (entities beyond the five predefined ones and
    /// character references are never expanded) or nests elements more than 100 deep.
    static func parse(_ data: Data) -> XMLTree? {
        guard !data.isEmpty else { return nil }
        var reader = XMLReader(bytes: [UInt8](data))
        return reader.document()
    }
}

/// A small non-validating XML reader for the documents AWS answers with: elements, attributes (read past, not
/// kept), character data with the predefined entities and character references, CDATA, comments and processing
/// instructions. Documents nested deeper than `maximumDepth` are refused: AWS's are a few levels deep, and the
/// tree is walked (and freed) recursively.
private struct XMLReader {
    static let maximumDepth = 100
    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func document() -> XMLTree? {
        guard skipMisc(), index < bytes.count, bytes[index] == UInt8(ascii: "<") else { return nil }
        var stack: [XMLTree] = []
        var root: XMLTree?
        while root == nil {
            guard index < bytes.count else { return nil }
            if bytes[index] != UInt8(ascii: "<") {
                guard let text = characterData() else { return nil }
                if stack.isEmpty { return nil }
                stack[stack.count - 1].text += text
            } else if starts(with: "</") {
                index += 2
                guard let name = name(), skipSpaces(), take(">"), let done = stack.popLast(), done.name == name else {
                    return nil
                }
                if stack.isEmpty { root = done } else { stack[stack.count - 1].children.append(done) }
            } else if starts(with: "<!--") {
                guard !stack.isEmpty, skip(past: "-->") else { return nil }
            } else if starts(with: "<![CDATA[") {
                index += 9
                let begin = index
                guard !stack.isEmpty, skip(past: "]]>") else { return nil }
                stack[stack.count - 1].text += String(decoding: bytes[begin..<(index - 3)], as: UTF8.self)
            } else if starts(with: "<?") {
                guard !stack.isEmpty, skip(past: "?>") else { return nil }
            } else if starts(with: "<!") {
                return nil
            } else {
                index += 1
                guard let name = name(), skipAttributes() else { return nil }
                let element = XMLTree(name: name, text: "", children: [])
                if take("/>") {
                    if stack.isEmpty { root = element } else { stack[stack.count - 1].children.append(element) }
                } else if take(">") {
                    guard stack.count < Self.maximumDepth else { return nil }
                    stack.append(element)
                } else {
                    return nil
                }
            }
        }
        guard skipMisc(), index == bytes.count else { return nil }
        return root
    }

    private func starts(with literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        return literal.withUTF8Buffer { $0.elementsEqual(bytes[index..<(index + count)]) }
    }

    private mutating func take(_ literal: StaticString) -> Bool {
        guard starts(with: literal) else { return false }
        index += literal.utf8CodeUnitCount
        return true
    }

    /// Moves just past the next `literal`; false when it never comes.
    private mutating func skip(past literal: StaticString) -> Bool {
        while index < bytes.count {
            if take(literal) { return true }
            index += 1
        }
        return false
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    @discardableResult
    private mutating func skipSpaces() -> Bool {
        while index < bytes.count, Self.isSpace(bytes[index]) { index += 1 }
        return true
    }

    /// White space, comments and processing instructions (the XML declaration) outside the root element.
    private mutating func skipMisc() -> Bool {
        while true {
            skipSpaces()
            if starts(with: "<?") {
                guard skip(past: "?>") else { return false }
            } else if starts(with: "<!--") {
                guard skip(past: "-->") else { return false }
            } else {
                return true
            }
        }
    }

    private mutating func name() -> String? {
        let begin = index
        while index < bytes.count {
            let byte = bytes[index]
            if Self.isSpace(byte) || byte == UInt8(ascii: "/") || byte == UInt8(ascii: ">") || byte == UInt8(ascii: "=")
                || byte == UInt8(ascii: "<") { break }
            index += 1
        }
        return index > begin ? String(decoding: bytes[begin..<index], as: UTF8.self) : nil
    }

    /// `name="value"` pairs up to `>` or `/>`; a quoted value may hold `>`.
    private mutating func skipAttributes() -> Bool {
        while true {
            skipSpaces()
            guard index < bytes.count else { return false }
            if bytes[index] == UInt8(ascii: ">") || starts(with: "/>") { return true }
            guard name() != nil, skipSpaces(), take("="), skipSpaces(), index < bytes.count else { return false }
            let quote = bytes[index]
            guard quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") else { return false }
            index += 1
            while index < bytes.count, bytes[index] != quote { index += 1 }
            guard index < bytes.count else { return false }
            index += 1
        }
    }

    /// Text up to the next `<`, entities replaced; nil for an unknown or malformed entity.
    private mutating func characterData() -> String? {
        var out: [UInt8] = []
        while index < bytes.count, bytes[index] != UInt8(ascii: "<") {
            if bytes[index] == 0x0D {  // line ends are normalised to LF, as every XML parser does
                out.append(0x0A)
                index += 1
                if index < bytes.count, bytes[index] == 0x0A { index += 1 }
                continue
            }
            guard bytes[index] == UInt8(ascii: "&") else {
                out.append(bytes[index])
                index += 1
                continue
            }
            // Entities are short: looking no further keeps a document of many bare `&` linear.
            guard let end = bytes[index..<min(bytes.count, index + 13)].firstIndex(of: UInt8(ascii: ";")) else {
                return nil
            }
            let entity = String(decoding: bytes[(index + 1)..<end], as: UTF8.self)
            index = end + 1
            switch entity {
            case "amp": out.append(UInt8(ascii: "&"))
            case "lt": out.append(UInt8(ascii: "<"))
            case "gt": out.append(UInt8(ascii: ">"))
            case "quot": out.append(UInt8(ascii: "\""))
            case "apos": out.append(UInt8(ascii: "'"))
            default:
                let digits = entity.dropFirst()
                let value: UInt32?
                if entity.hasPrefix("#x") { value = UInt32(digits.dropFirst(), radix: 16) }
                else if entity.hasPrefix("#") { value = UInt32(digits, radix: 10) }
                else { value = nil }
                guard let value, let scalar = Unicode.Scalar(value) else { return nil }
                out.append(contentsOf: String(Character(scalar)).utf8)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Escapes text for an XML element body (keys in DeleteObjects, ETags in CompleteMultipartUpload).
enum XMLText {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\r": out += "&#13;"  // a raw CR would be normalized away by the server's parser
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
