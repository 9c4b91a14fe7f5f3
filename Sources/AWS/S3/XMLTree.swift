import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

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

    /// nil when the data is not well-formed XML.
    static func parse(_ data: Data) -> XMLTree? {
        guard !data.isEmpty else { return nil }
        let parser = XMLParser(data: data)
        parser.shouldProcessNamespaces = false
        parser.shouldResolveExternalEntities = false
        let builder = Builder()
        parser.delegate = builder
        guard parser.parse() else { return nil }
        return builder.root
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var stack: [XMLTree] = []
        var root: XMLTree?

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName: String?, attributes: [String: String] = [:]) {
            stack.append(XMLTree(name: elementName, text: "", children: []))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if !stack.isEmpty { stack[stack.count - 1].text += string }
        }

        func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
            if !stack.isEmpty { stack[stack.count - 1].text += String(decoding: CDATABlock, as: UTF8.self) }
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?,
                    qualifiedName: String?) {
            guard let done = stack.popLast() else { return }
            if stack.isEmpty {
                root = done
            } else {
                stack[stack.count - 1].children.append(done)
            }
        }
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
