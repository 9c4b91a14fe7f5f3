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
        var out = ByteWriter()
        out.varint(UInt64(entries.count))
        for entry in entries {
            out.hash(entry.hash)
            out.varint(UInt64(entry.offset))
            out.varint(UInt64(entry.length))
        }
        return SealedObject.wrap(out.bytes, magic: magic)
    }

    static func decode(_ bytes: [UInt8], pack: String) throws(ConvoyError) -> [PackEntry] {
        let what = "index of pack \(pack)"
        var input = ByteReader(bytes: try SealedObject.unwrap(bytes, magic: magic, what: what), subject: what)
        let count = try input.varint()
        // Each entry takes at least 34 bytes: a count beyond that is damage, not a reason to allocate.
        guard count <= UInt64(input.remaining / 34) else { throw input.malformed("entry count") }
        var entries: [PackEntry] = []
        entries.reserveCapacity(Int(count))
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
