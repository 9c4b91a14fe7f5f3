/// Content-defined chunking (FastCDC with normalized chunking): cut points depend on the bytes around them, so
/// an insertion shifts only the chunks it touches and unchanged data keeps its chunk names.
///
/// The gear table and masks define every chunk boundary ever stored: changing them makes old and new backups
/// share nothing. They are fixed for format version 1.
public struct FastCDC: Sendable {
    public let minimum: Int
    public let average: Int
    public let maximum: Int
    private let maskSmall: UInt64
    private let maskLarge: UInt64

    /// About 1 MiB average: 256 KiB minimum, 4 MiB maximum.
    public static let standard = FastCDC(minimum: 256 << 10, average: 1 << 20, maximum: 4 << 20)

    public init(minimum: Int, average: Int, maximum: Int) {
        precondition(minimum > 0 && minimum <= average && average <= maximum, "chunk sizes out of order")
        self.minimum = minimum
        self.average = average
        self.maximum = maximum
        let bits = max(1, Int.bitWidth - 1 - average.leadingZeroBitCount)
        // Normalization level 2: harder to cut before the average, easier after. The masks use the hash's top
        // bits, which depend on the last 64 bytes (the low bits of a shift-left hash see only a few bytes).
        maskSmall = Self.topBits(bits + 2)
        maskLarge = Self.topBits(max(1, bits - 2))
    }

    private static func topBits(_ count: Int) -> UInt64 {
        count >= 64 ? UInt64.max : ((UInt64(1) << UInt64(count)) - 1) << UInt64(64 - count)
    }

    /// The length of the first chunk of `data` (all of it when shorter than the minimum). `data` should hold at
    /// least `maximum` bytes unless it is the end of the input.
    public func cut(_ data: UnsafeRawBufferPointer) -> Int {
        let count = data.count
        if count <= minimum { return count }
        let end = Swift.min(count, maximum)
        let normal = Swift.min(end, average)
        var hash: UInt64 = 0
        var index = minimum
        return Gear.table.withUnsafeBufferPointer { gear in
            while index < normal {
                hash = (hash << 1) &+ gear[Int(data[index])]
                if hash & maskSmall == 0 { return index + 1 }
                index += 1
            }
            while index < end {
                hash = (hash << 1) &+ gear[Int(data[index])]
                if hash & maskLarge == 0 { return index + 1 }
                index += 1
            }
            return end
        }
    }
}

/// 256 pseudo-random 64-bit values from SplitMix64 with a fixed seed (part of the format).
enum Gear {
    static let table: [UInt64] = {
        var state: UInt64 = 0x636f_6e76_6f79_0001
        return (0..<256).map { _ in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }()
}
