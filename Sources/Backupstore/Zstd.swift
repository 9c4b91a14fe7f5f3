import ConvoyCore
import CZstd

/// libzstd's one-shot API.
enum Zstd {
    static let level: Int32 = 1

    static func compress(_ input: UnsafeRawBufferPointer) -> [UInt8]? {
        let bound = ZSTD_compressBound(input.count)
        var failed = false
        // Uninitialized capacity: zero-filling a buffer zstd overwrites cost as much as hashing it.
        let output = [UInt8](unsafeUninitializedCapacity: bound) { buffer, count in
            let size = ZSTD_compress(buffer.baseAddress, bound, input.baseAddress, input.count, level)
            if ZSTD_isError(size) != 0 {
                failed = true
                count = 0
            } else {
                count = size
            }
        }
        return failed ? nil : output
    }

    /// Decompresses a frame whose content size is recorded in its header, refusing anything larger than `limit`.
    static func decompress(_ input: ArraySlice<UInt8>, limit: Int) throws(ConvoyError) -> [UInt8] {
        let result: Result<[UInt8], ConvoyError> = input.withUnsafeBytes { raw in
            do throws(ConvoyError) {
                return .success(try decompress(raw, limit: limit))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    static func decompress(_ input: UnsafeRawBufferPointer, limit: Int) throws(ConvoyError) -> [UInt8] {
        let expected = ZSTD_getFrameContentSize(input.baseAddress, input.count)
        guard expected != ZSTD_CONTENTSIZE_ERROR, expected != ZSTD_CONTENTSIZE_UNKNOWN, expected <= UInt64(limit) else {
            throw ConvoyError(.driverFailure, "not a valid compressed block")
        }
        var size = 0
        let output = [UInt8](unsafeUninitializedCapacity: Int(expected)) { buffer, count in
            size = ZSTD_decompress(buffer.baseAddress, buffer.count, input.baseAddress, input.count)
            count = ZSTD_isError(size) == 0 && size == Int(expected) ? size : 0
        }
        guard ZSTD_isError(size) == 0, size == Int(expected) else {
            throw ConvoyError(.driverFailure, "compressed block does not decompress")
        }
        return output
    }
}
