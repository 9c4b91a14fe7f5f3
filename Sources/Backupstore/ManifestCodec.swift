import ConvoyCore

/// The binary form of a manifest (JSON through Codable cost more than reading the changed data of a small
/// incremental backup). Integers are LEB128 varints (signed ones zigzag-encoded), strings are a length and UTF-8
/// bytes (names, paths, link targets and xattr names: a length and the bytes the filesystem held, UTF-8 or not),
/// block hashes are 32 raw bytes, chunk checksums 16 (format 2), the writing host's id after the volume size
/// (format 3). Sealed like every record (SealedObject) under the
/// magic "CVM1".
enum ManifestCodec {
    static func encode(_ manifest: Manifest) -> [UInt8] {
        var out = ByteWriter()
        // Checksums need format 2 and a host format 3, even in a manifest first read in an older format, so older
        // convoy never misreads one.
        let hasChecksums = manifest.entries.contains { $0.chunks?.contains { $0.checksum != nil } ?? false }
        var format = hasChecksums ? max(manifest.format, 2) : manifest.format
        if manifest.host != nil { format = max(format, 3) }
        out.varint(UInt64(format))
        out.string(manifest.id)
        out.string(manifest.volume)
        out.string(manifest.kind.rawValue)
        out.string(manifest.createdAt)
        out.optionalString(manifest.snapshot)
        out.optionalString(manifest.parent)
        out.varint(manifest.volumeSize)
        if format >= 3 { out.optionalString(manifest.host) }
        let stats = manifest.stats
        for value in [UInt64(stats.files), UInt64(stats.directories), stats.bytes, stats.bytesRead,
                      UInt64(stats.newBlocks), stats.newBytesStored] { out.varint(value) }
        out.varint(UInt64(manifest.entries.count))
        for entry in manifest.entries { encode(entry, into: &out) }
        return out.bytes
    }

    static let kinds: [Entry.Kind] = [.directory, .file, .symlink, .hardlink, .fifo, .socket, .charDevice, .blockDevice]

    private static func encode(_ entry: Entry, into out: inout ByteWriter) {
        out.byteString(entry.path)
        out.bytes.append(UInt8(kinds.firstIndex(of: entry.type) ?? 0))
        out.varint(UInt64(entry.mode))
        out.varint(UInt64(entry.uid))
        out.varint(UInt64(entry.gid))
        out.signed(entry.mtimeSeconds)
        out.signed(entry.mtimeNanoseconds)
        out.varint(entry.size)
        var flags: UInt8 = 0
        if entry.target != nil { flags |= 1 }
        if entry.rdev != nil { flags |= 2 }
        if entry.xattrs != nil { flags |= 4 }
        if entry.chunks != nil { flags |= 8 }
        if entry.inode != nil { flags |= 16 }
        // Flag 32: each chunk has a presence byte, then its checksum when it has one (chunks reused from a format 1
        // manifest have none; an image's unchanged blocks may keep that mix for a long time).
        let withChecksums = entry.chunks?.contains { $0.checksum != nil } ?? false
        if withChecksums { flags |= 32 }
        out.bytes.append(flags)
        if let target = entry.target { out.byteString(target) }
        if let rdev = entry.rdev { out.varint(rdev) }
        if let xattrs = entry.xattrs {
            out.varint(UInt64(xattrs.count))
            for (name, value) in xattrs.sorted(by: { $0.key < $1.key }) {
                out.byteString(name)
                out.string(value)
            }
        }
        if let chunks = entry.chunks {
            out.varint(UInt64(chunks.count))
            for chunk in chunks {
                out.hash(chunk.hash)
                out.varint(chunk.offset)
                out.varint(UInt64(chunk.length))
                if withChecksums {
                    if let checksum = chunk.checksum {
                        out.bytes.append(1)
                        out.checksum(checksum)
                    } else {
                        out.bytes.append(0)
                    }
                }
            }
        }
        if let inode = entry.inode { out.varint(inode) }
    }

    /// Total on any input: a manifest comes from a store that anyone able to write the bucket can craft. Counts are
    /// bounded by the bytes left, integers by the fields they go into, sizes and chunk ends by what an off_t holds
    /// (and sizes must add up without overflow); anything else is a thrown ConvoyError naming what is malformed.
    /// Layout rules (paths, chunk order) are ManifestRules', checked where a restore or a mount needs them.
    static func decode(_ bytes: [UInt8]) throws(ConvoyError) -> Manifest {
        var input = ByteReader(bytes: bytes)
        let format = try input.varint()
        guard format <= UInt64(Manifest.currentFormat) else {
            throw ConvoyError(.conflict, "manifest format \(format) is newer than this convoy reads; upgrade convoy")
        }
        let id = try input.string()
        let volume = try input.string()
        guard let kind = Manifest.Kind(rawValue: try input.string()) else { throw input.malformed("kind") }
        let createdAt = try input.string()
        let snapshot = try input.optionalString()
        let parent = try input.optionalString()
        let volumeSize = try input.varint()
        let host = format >= 3 ? try input.optionalString() : nil
        // Statistics are only shown: an absurd count is clamped, not refused.
        var stats = Manifest.Stats()
        stats.files = Int(clamping: try input.varint())
        stats.directories = Int(clamping: try input.varint())
        stats.bytes = try input.varint()
        stats.bytesRead = try input.varint()
        stats.newBlocks = Int(clamping: try input.varint())
        stats.newBytesStored = try input.varint()
        // An entry takes at least 9 bytes: path length, type, mode, uid, gid, two times, size and flags.
        let count = try input.count(of: "entry count", minimumBytesEach: 9)
        var entries: [Entry] = []
        entries.reserveCapacity(count)
        // Readers add sizes up (progress, statfs): their sum must fit as every writer's did.
        var totalSize: UInt64 = 0
        for _ in 0..<count {
            let entry = try decodeEntry(&input)
            let (sum, overflow) = totalSize.addingReportingOverflow(entry.size)
            guard !overflow else { throw input.malformed("sizes that add up to more than 2^64 bytes") }
            totalSize = sum
            entries.append(entry)
        }
        guard input.atEnd else { throw input.malformed("trailing bytes") }
        var manifest = Manifest(id: id, volume: volume, kind: kind, createdAt: createdAt, snapshot: snapshot,
                                parent: parent, volumeSize: volumeSize, entries: entries, stats: stats)
        manifest.format = Int(format)
        manifest.host = host
        return manifest
    }

    /// Flags an entry may have (1 target, 2 rdev, 4 xattrs, 8 chunks, 16 inode, 32 chunk checksums).
    static let knownFlags: UInt8 = 63

    private static func decodeEntry(_ input: inout ByteReader) throws(ConvoyError) -> Entry {
        let path = try input.byteString()
        let name = ManifestRules.quoted(path)
        let kindIndex = Int(try input.byte())
        guard kindIndex < kinds.count else { throw input.malformed("type of \(name)") }
        var entry = Entry(path: path, type: kinds[kindIndex], mode: try input.uint32("mode of \(name)"),
                          uid: try input.uint32("owner of \(name)"), gid: try input.uint32("group of \(name)"),
                          mtimeSeconds: try input.signed(), mtimeNanoseconds: try input.signed(),
                          size: try input.varint())
        guard (0..<1_000_000_000).contains(entry.mtimeNanoseconds) else {
            throw input.malformed("modification time of \(name)")
        }
        guard entry.size <= ManifestRules.maximumSize else { throw input.malformed("size of \(name)") }
        let flags = try input.byte()
        guard flags & ~knownFlags == 0 else { throw input.malformed("flags of \(name)") }
        if flags & 1 != 0 { entry.target = try input.byteString() }
        if flags & 2 != 0 { entry.rdev = try input.varint() }
        if flags & 4 != 0 {
            let count = try input.count(of: "xattr count of \(name)", minimumBytesEach: 2)
            var xattrs: [ByteString: String] = [:]
            for _ in 0..<count {
                let key = try input.byteString()
                guard xattrs.updateValue(try input.string(), forKey: key) == nil else {
                    throw input.malformed("xattr \(ManifestRules.quoted(key)) of \(name), listed twice")
                }
            }
            entry.xattrs = xattrs
        }
        if flags & 8 != 0 {
            let withChecksums = flags & 32 != 0
            let count = try input.count(of: "chunk count of \(name)", minimumBytesEach: withChecksums ? 35 : 34)
            var chunks: [Chunk] = []
            chunks.reserveCapacity(count)
            for _ in 0..<count {
                var chunk = Chunk(hash: try input.hash(), offset: try input.varint(),
                                  length: try input.uint32("chunk length in \(name)"))
                // Writes and reads go to offset + length: it must not overflow, nor leave what an off_t holds.
                let (end, overflow) = chunk.offset.addingReportingOverflow(UInt64(chunk.length))
                guard !overflow, end <= ManifestRules.maximumSize else {
                    throw input.malformed("chunk offset \(chunk.offset) in \(name)")
                }
                if withChecksums, try input.byte() != 0 { chunk.checksum = try input.checksum() }
                chunks.append(chunk)
            }
            entry.chunks = chunks
        }
        if flags & 16 != 0 { entry.inode = try input.varint() }
        return entry
    }
}

struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7f) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func signed(_ value: Int64) { varint(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }

    mutating func string(_ value: String) {
        let utf8 = value.utf8
        varint(UInt64(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    /// A name or path: its bytes as they are (a string is the same bytes when they are UTF-8).
    mutating func byteString(_ value: ByteString) {
        varint(UInt64(value.count))
        value.withBytes { bytes.append(contentsOf: $0) }
    }

    mutating func optionalString(_ value: String?) {
        if let value {
            bytes.append(1)
            string(value)
        } else {
            bytes.append(0)
        }
    }

    /// A 64-digit hex hash as 32 bytes.
    mutating func hash(_ hex: String) {
        var high: UInt8 = 0
        var even = true
        for digit in hex.utf8 {
            let nibble: UInt8 = digit >= 97 ? digit &- 87 : digit >= 65 ? digit &- 55 : digit &- 48
            if even { high = nibble << 4 } else { bytes.append(high | nibble) }
            even.toggle()
        }
    }

    /// A checksum as 16 bytes, high half first, each half big-endian.
    mutating func checksum(_ value: BlockChecksum) {
        for half in [value.high, value.low] {
            for shift in stride(from: 56, through: 0, by: -8) {
                bytes.append(UInt8(truncatingIfNeeded: half >> UInt64(shift)))
            }
        }
    }
}

struct ByteReader {
    let bytes: [UInt8]
    var position = 0
    /// What is being read, for messages.
    var subject = "the manifest"

    var atEnd: Bool { position == bytes.count }
    var remaining: Int { bytes.count - position }

    func malformed(_ what: String) -> ConvoyError {
        ConvoyError(.driverFailure, "\(subject) is malformed (\(what))")
    }

    mutating func byte() throws(ConvoyError) -> UInt8 {
        guard position < bytes.count else { throw malformed("truncated") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func varint() throws(ConvoyError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try byte()
            let bits = UInt64(byte & 0x7f)
            // The tenth byte holds only the 64th bit: more would be dropped silently (or need an 11th byte).
            guard shift < 63 || (shift == 63 && bits <= 1) else { throw malformed("varint") }
            value |= bits << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }

    /// A count of items that take at least `minimumBytesEach` bytes each: one the remaining input cannot hold is
    /// damage, never a reason to allocate or to loop.
    mutating func count(of what: String, minimumBytesEach: Int) throws(ConvoyError) -> Int {
        let value = try varint()
        guard value <= UInt64(remaining / max(1, minimumBytesEach)) else { throw malformed(what) }
        return Int(value)
    }

    /// A varint that must fit 32 bits (modes, owners, lengths).
    mutating func uint32(_ what: String) throws(ConvoyError) -> UInt32 {
        guard let value = UInt32(exactly: try varint()) else { throw malformed(what) }
        return value
    }

    mutating func signed() throws(ConvoyError) -> Int64 {
        let raw = try varint()
        return Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
    }

    mutating func string() throws(ConvoyError) -> String {
        let length = try count(of: "string length", minimumBytesEach: 1)
        defer { position += length }
        return String(decoding: bytes[position..<(position + length)], as: UTF8.self)
    }

    mutating func byteString() throws(ConvoyError) -> ByteString {
        let length = try count(of: "string length", minimumBytesEach: 1)
        defer { position += length }
        return ByteString(bytes: bytes[position..<(position + length)])
    }

    mutating func optionalString() throws(ConvoyError) -> String? {
        try byte() == 0 ? nil : try string()
    }

    mutating func hash() throws(ConvoyError) -> String {
        guard remaining >= 32 else { throw malformed("hash") }
        defer { position += 32 }
        return bytes[position..<(position + 32)].hexString
    }

    mutating func checksum() throws(ConvoyError) -> BlockChecksum {
        guard remaining >= 16 else { throw malformed("checksum") }
        defer { position += 16 }
        let halves = [0, 8].map { start in
            bytes[(position + start)..<(position + start + 8)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        return BlockChecksum(high: halves[0], low: halves[1])
    }
}
