/// Incompressible-looking test data, fast even in a debug build (SplitMix64, eight bytes a step).
enum TestBytes {
    static func make(count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt8] {
        var state = seed
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < count {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                withUnsafeBytes(of: z.littleEndian) { word in
                    for index in 0..<min(8, count - offset) { buffer[offset + index] = word[index] }
                }
                offset += 8
            }
        }
        return bytes
    }
}
