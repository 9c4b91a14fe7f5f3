import ConvoyCore
import Foundation
import Hummingbird

/// Reading JSON request bodies and writing JSON responses, shared by both routers.
enum JSONBody {
    static let maxRequestBytes = 1 << 20

    /// Reads and decodes the body. An empty body decodes as `{}` (Docker sends none for List and Capabilities).
    static func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws(ConvoyError) -> T {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maxRequestBytes)
        } catch {
            throw .invalid("cannot read the request body (at most \(maxRequestBytes) bytes): \(error)")
        }
        var data = Data(buffer.readableBytesView)
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { data = Data("{}".utf8) }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw .invalid("malformed request body: field \(fieldPath(context)) has the wrong type")
        } catch DecodingError.dataCorrupted {
            throw .invalid("malformed request body: it is not valid JSON")
        } catch {
            throw .invalid("malformed request body: expected a JSON object")
        }
    }

    static func response<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, contentType: String,
                                       pretty: Bool = false) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty
            ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            : [.sortedKeys, .withoutEscapingSlashes]
        let data: Data
        do {
            data = try encoder.encode(value)
        } catch {
            data = Data(#"{"Err":"internal error: cannot encode the response"}"#.utf8)
        }
        var body = ByteBuffer(bytes: data)
        body.writeString("\n")
        return Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: body))
    }

    private static func fieldPath(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map(\.stringValue).joined(separator: ".")
        return path.isEmpty ? "(root)" : path
    }
}
