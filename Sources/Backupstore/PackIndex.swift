import ConvoyCore

/// Where a packed block is stored: `length` bytes from `offset` in pack `pack` (the block's encoded form, exactly
/// as a block object would hold it).
struct PackedBlock: Sendable, Equatable {
    var pack: String
    var offset: Int
    var length: Int
}

/// One block's place in a pack, as its index lists it.
struct PackEntry: Sendable, Equatable {
    var hash: String
    var offset: Int
    var length: Int
}

/// The index object written next to each pack: its blocks' hashes and places. Binary (32-byte hashes, varints),
/// sealed like a manifest (zstd, SHA-256 of the payload), so a damaged index is detected, not half-read.
enum PackIndexCodec {
    static let magic: [UInt8] = Array("CVX1".utf8)

    static func encode(_ entries: [PackEntry]) -> [UInt8] {
        SealedObject.wrap(encodePayload(entries), magic: magic)
    }

    static func encodePayload(_ entries: [PackEntry]) -> [UInt8] {
        var out = ByteWriter()
        out.varint(UInt64(entries.count))
        for entry in entries {
            out.hash(entry.hash)
            out.varint(UInt64(entry.offset))
            out.varint(UInt64(entry.length))
        }
        return out.bytes
    }

    static func decode(_ bytes: [UInt8], pack: String) throws(ConvoyError) -> [PackEntry] {
        let what = "index of pack \(pack)"
        return try decodePayload(try SealedObject.unwrap(bytes, magic: magic, what: what), what: what)
    }

    /// The entries of an unsealed index; `what` names it in errors.
    static func decodePayload(_ payload: [UInt8], what: String) throws(ConvoyError) -> [PackEntry] {
        var input = ByteReader(bytes: payload, subject: what)
        // Each entry takes at least 34 bytes: hash, offset, length.
        let count = try input.count(of: "entry count", minimumBytesEach: 34)
        var entries: [PackEntry] = []
        entries.reserveCapacity(count)
        for _ in 0..<count {
            let hash = try input.hash()
            let offset = try input.varint(), length = try input.varint()
            guard offset < UInt64(Int.max / 2), length > 0, length <= UInt64(BlockCodec.maxBlockSize + 1) else {
                throw input.malformed("entry of block \(hash)")
            }
            entries.append(PackEntry(hash: hash, offset: Int(offset), length: Int(length)))
        }
        guard input.atEnd else { throw input.malformed("trailing bytes") }
        return entries
    }
}
