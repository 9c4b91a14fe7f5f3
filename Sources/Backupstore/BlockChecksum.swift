import CXXHash
import ConvoyCore

/// XXH3-128 of a block's plain content, recorded per chunk in manifests and checked on every read that has it.
///
/// A block's name (SHA-256 of its content) stays its identity for deduplication; the checksum makes checking it
/// cheap: XXH3 runs at about 19 GB/s per core here, SHA-256 (with the CPU's SHA extensions) at 3.3 GB/s, and
/// hashing was 30 % of a cold backup-mount read's CPU. The manifest is sealed (SHA-256 over its bytes), so the
/// chain from a verified manifest to each block's bytes holds against corruption and against a block stored under
/// the wrong name. Not against someone crafting blocks to collide on purpose: XXH3 is not a cryptographic hash.
/// `backup verify` re-hashes every block with SHA-256 as well.
public struct BlockChecksum: Sendable, Hashable, Codable, CustomStringConvertible {
    public let high: UInt64
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public static func of(_ bytes: UnsafeRawBufferPointer) -> BlockChecksum {
        let value = XXH3_128bits(bytes.baseAddress, bytes.count)
        return BlockChecksum(high: value.high64, low: value.low64)
    }

    public static func of(_ bytes: [UInt8]) -> BlockChecksum {
        bytes.withUnsafeBytes { of($0) }
    }

    /// 32 hex digits, high half first (xxhsum's canonical form).
    public var description: String {
        let high = String(high, radix: 16)
        let low = String(low, radix: 16)
        return String(repeating: "0", count: 16 - high.count) + high
            + String(repeating: "0", count: 16 - low.count) + low
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard text.utf8.count == 32, let high = UInt64(text.prefix(16), radix: 16),
              let low = UInt64(text.suffix(16), radix: 16) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "not a 32-digit checksum"))
        }
        self.init(high: high, low: low)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
