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

    /// About 1 MiB average: 256 KiB minimum, 4 MiB maximum. For files of `largeFile` bytes or more.
    public static let standard = FastCDC(minimum: 256 << 10, average: 1 << 20, maximum: 4 << 20)
    /// The same shape a quarter the size (256 KiB average), for smaller files: documents and source files are
    /// edited by inserting, and an insert costs the whole chunk it lands in (a 4 KiB insert into a 2.5 MiB text
    /// file stored a 1 MiB chunk anew). A large file keeps large chunks: fewer manifest entries and objects.
    public static let smallerFiles = FastCDC(minimum: 64 << 10, average: 256 << 10, maximum: 1 << 20)
    public static let largeFile: UInt64 = 16 << 20

    /// The chunk sizes of a file of `size` bytes (part of the format: a file chunked otherwise shares no chunks).
    public static func forFile(ofSize size: UInt64) -> FastCDC {
        size >= largeFile ? standard : smallerFiles
    }

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
        return Gear.table.withUnsafeBufferPointer { gear in
            var hash: UInt64 = 0
            if let cut = Self.scan(data, gear, from: minimum, to: normal, mask: maskSmall, hash: &hash) { return cut }
            return Self.scan(data, gear, from: normal, to: end, mask: maskLarge, hash: &hash) ?? end
        }
    }

    /// Whether `cut` ends a chunk exactly after `chunk` when more bytes follow it, given that no earlier position
    /// in it is a cut point (true of any chunk this chunker made): it is the maximum, or longer than the minimum
    /// with a gear hash over its last 64 bytes (all that is left of earlier ones after 64 shifts) that meets the
    /// mask of its length. Lets a backup keep a parent's chunk, once its bytes are checked, without rescanning it.
    public func endsChunk(_ chunk: UnsafeRawBufferPointer) -> Bool {
        let length = chunk.count
        if length == maximum { return true }
        guard length > minimum, length < maximum else { return false }
        // Cuts up to the average are tested with the small mask, later ones with the large (see `cut`).
        let mask = length <= average ? maskSmall : maskLarge
        var hash: UInt64 = 0
        Gear.table.withUnsafeBufferPointer { gear in
            for index in Swift.max(minimum, length - 64)..<length {
                hash = (hash << 1) &+ gear[Int(chunk[index])]
            }
        }
        return hash & mask == 0
    }

    /// The first position in `start..<stop` after which the gear hash has none of `mask`'s bits set, or nil.
    ///
    /// The hash is `h = (h << 1) + gear[byte]` per byte. Four bytes are taken per step, and the hash after each
    /// of them is computed from the one before the step, e.g. `(h << 2) + ((g0 << 1) + g1)` after two: the same
    /// values (shifts distribute over wrapping addition), but the chain from one step to the next is a single
    /// shift-and-add instead of four. Every position is still tested, so the cut points are exactly those of
    /// the byte-at-a-time definition (tested against it). 1.8 → 2.9 GB/s on this project's VM.
    @inline(__always)
    private static func scan(_ data: UnsafeRawBufferPointer, _ gear: UnsafeBufferPointer<UInt64>,
                             from start: Int, to stop: Int, mask: UInt64, hash: inout UInt64) -> Int? {
        var index = start
        var h = hash
        defer { hash = h }
        while index + 3 < stop {
            let g0 = gear[Int(data[index])]
            let g1 = gear[Int(data[index + 1])]
            let g2 = gear[Int(data[index + 2])]
            let g3 = gear[Int(data[index + 3])]
            let two = (g0 << 1) &+ g1
            let three = (two << 1) &+ g2
            let after1 = (h << 1) &+ g0
            let after2 = (h << 2) &+ two
            let after3 = (h << 3) &+ three
            h = (h << 4) &+ ((three << 1) &+ g3)
            if after1 & mask == 0 || after2 & mask == 0 || after3 & mask == 0 || h & mask == 0 {
                if after1 & mask == 0 { return index + 1 }
                if after2 & mask == 0 { return index + 2 }
                if after3 & mask == 0 { return index + 3 }
                return index + 4
            }
            index += 4
        }
        while index < stop {
            h = (h << 1) &+ gear[Int(data[index])]
            if h & mask == 0 { return index + 1 }
            index += 1
        }
        return nil
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
