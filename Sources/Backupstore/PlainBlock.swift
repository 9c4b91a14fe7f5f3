import ConvoyCore

/// A verified block's plain bytes without a copy: a raw block is a slice of the buffer it was read into (after
/// its one tag byte), a compressed one the array it was decompressed into.
public struct PlainBlock: Sendable {
    private let owner: ObjectBytes
    private let start: Int
    public let count: Int

    public init(_ bytes: [UInt8]) {
        owner = ObjectBytes(bytes)
        start = 0
        count = bytes.count
    }

    init(slicing owner: ObjectBytes, from start: Int) {
        self.owner = owner
        self.start = start
        count = owner.count - start
    }

    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try owner.withUnsafeBytes { (all: UnsafeRawBufferPointer) throws(E) -> R in
            try body(UnsafeRawBufferPointer(rebasing: all[start..<(start + count)]))
        }
    }

    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}

extension BlockCodec {
    /// Like `decode`, keeping a raw block in the buffer it was read into.
    static func decodeInPlace(_ object: ObjectBytes, expectedHash: String, checksum: BlockChecksum? = nil,
                              cipher: StoreCipher? = nil) throws(ConvoyError) -> PlainBlock {
        let raw = try object.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) throws(ConvoyError) -> Bool in
            guard bytes.first == rawTag else { return false }
            try verify(UnsafeRawBufferPointer(rebasing: bytes[1...]), expectedHash: expectedHash, checksum: checksum,
                       cipher: cipher)
            return true
        }
        if raw { return PlainBlock(slicing: object, from: 1) }
        return PlainBlock(try object.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) throws(ConvoyError) in
            try decode(bytes, expectedHash: expectedHash, checksum: checksum, cipher: cipher)
        })
    }
}
