import Foundation
import NIOCore

/// A request body handed to the connection in small slices, each copied into a `ByteBuffer` only when the
/// connection asks for it: a PUT in flight holds its body once plus a slice or two, not a second copy.
struct BodySlices: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    static let sliceSize = 256 << 10

    let body: Data

    init(_ body: Data) { self.body = body }

    func makeAsyncIterator() -> Iterator { Iterator(body: body, offset: body.startIndex) }

    struct Iterator: AsyncIteratorProtocol {
        let body: Data
        var offset: Int

        mutating func next() async -> ByteBuffer? {
            guard offset < body.endIndex else { return nil }
            let end = Swift.min(offset + BodySlices.sliceSize, body.endIndex)
            defer { offset = end }
            return ByteBuffer(bytes: body[offset..<end])
        }
    }
}
