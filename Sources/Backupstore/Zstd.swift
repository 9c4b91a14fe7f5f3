import ConvoyCore
import CZstd

/// libzstd's one-shot API.
enum Zstd {
    static let level: Int32 = 3

    static func compress(_ input: UnsafeRawBufferPointer) -> [UInt8]? {
        let bound = ZSTD_compressBound(input.count)
        var output = [UInt8](repeating: 0, count: bound)
        let size = output.withUnsafeMutableBytes { out in
            ZSTD_compress(out.baseAddress, bound, input.baseAddress, input.count, level)
        }
        guard ZSTD_isError(size) == 0 else { return nil }
        output.removeSubrange(size...)
        return output
    }

    /// Decompresses a frame whose content size is recorded in its header, refusing anything larger than `limit`.
    static func decompress(_ input: ArraySlice<UInt8>, limit: Int) throws(ConvoyError) -> [UInt8] {
        let expected = input.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        guard expected != ZSTD_CONTENTSIZE_ERROR, expected != ZSTD_CONTENTSIZE_UNKNOWN, expected <= UInt64(limit) else {
            throw ConvoyError(.driverFailure, "not a valid compressed block")
        }
        var output = [UInt8](repeating: 0, count: Int(expected))
        let size = output.withUnsafeMutableBytes { out in
            input.withUnsafeBytes { ZSTD_decompress(out.baseAddress, out.count, $0.baseAddress, $0.count) }
        }
        guard ZSTD_isError(size) == 0, size == Int(expected) else {
            throw ConvoyError(.driverFailure, "compressed block does not decompress")
        }
        return output
    }
}
