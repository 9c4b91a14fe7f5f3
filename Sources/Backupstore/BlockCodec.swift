import ConvoyCore
import Crypto

/// Stored form of a data block: one tag byte (0 raw, 1 zstd) then the payload. A block is named by the SHA-256 of
/// its plain content, and decoding always checks the content, against the checksum the manifest recorded for it or
/// else against its name: a damaged block can never be served as data.
public enum BlockCodec {
    static let rawTag: UInt8 = 0
    static let zstdTag: UInt8 = 1
    /// Largest plain block accepted on decode (FastCDC's maximum is 4 MiB; dm blocks may be larger later).
    public static let maxBlockSize = 64 << 20

    public static func hash(_ bytes: UnsafeRawBufferPointer) -> String {
        SHA256.hash(data: bytes).hexString
    }

    public static func hash(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { hash($0) }
    }

    /// The stored object for `plain`: compressed when that is smaller, raw otherwise. A large block whose
    /// 64 KiB sample does not compress is stored raw without trying the whole (random data, media, archives).
    public static func encode(_ plain: UnsafeRawBufferPointer) -> [UInt8] {
        let sample = 64 << 10
        var worthTrying = true
        if plain.count > sample * 4, let probe = Zstd.compress(UnsafeRawBufferPointer(rebasing: plain[0..<sample])) {
            worthTrying = Double(probe.count) < Double(sample) * 0.97
        }
        if worthTrying, let compressed = Zstd.compress(plain), compressed.count < plain.count {
            var object = [UInt8]()
            object.reserveCapacity(compressed.count + 1)
            object.append(zstdTag)
            object.append(contentsOf: compressed)
            return object
        }
        var object = [UInt8]()
        object.reserveCapacity(plain.count + 1)
        object.append(rawTag)
        object.append(contentsOf: plain)
        return object
    }

    /// The plain content of a stored object, verified against its name.
    public static func decode(_ object: [UInt8], expectedHash: String, checksum: BlockChecksum? = nil,
                              cipher: StoreCipher? = nil) throws(ConvoyError) -> [UInt8] {
        let result: Result<[UInt8], ConvoyError> = object.withUnsafeBytes { raw in
            do throws(ConvoyError) {
                return .success(try decode(raw, expectedHash: expectedHash, checksum: checksum, cipher: cipher))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// `checksum`, when the manifest recorded one, is checked instead of the SHA-256 (see `BlockChecksum`).
    /// `cipher`: the block's store is encrypted, where ids are keyed hashes.
    public static func decode(_ object: UnsafeRawBufferPointer, expectedHash: String,
                              checksum: BlockChecksum? = nil,
                              cipher: StoreCipher? = nil) throws(ConvoyError) -> [UInt8] {
        guard let tag = object.first else {
            throw ConvoyError(.driverFailure, "block \(expectedHash) is empty (corrupt)")
        }
        let payload = UnsafeRawBufferPointer(rebasing: object[1...])
        let plain: [UInt8]
        switch tag {
        case rawTag: plain = Array(payload)
        case zstdTag:
            do { plain = try Zstd.decompress(payload, limit: maxBlockSize) } catch {
                throw ConvoyError(.driverFailure, "block \(expectedHash) is corrupt: \(error.message)")
            }
        default: throw ConvoyError(.driverFailure, "block \(expectedHash) is corrupt: unknown encoding \(tag)")
        }
        let verified: Result<Void, ConvoyError> = plain.withUnsafeBytes { bytes in
            do throws(ConvoyError) {
                try verify(bytes, expectedHash: expectedHash, checksum: checksum, cipher: cipher)
            } catch {
                return .failure(error)
            }
            return .success(())
        }
        try verified.get()
        return plain
    }

    /// Throws unless `plain` is block `expectedHash`'s content: its checksum when one is given, else its SHA-256.
    static func verify(_ plain: UnsafeRawBufferPointer, expectedHash: String,
                       checksum: BlockChecksum?, cipher: StoreCipher? = nil) throws(ConvoyError) {
        if let checksum {
            let actual = BlockChecksum.of(plain)
            guard actual == checksum else {
                throw ConvoyError(.driverFailure,
                                  "block \(expectedHash) is corrupt: its content's checksum is \(actual), "
                                  + "the manifest records \(checksum)")
            }
            return
        }
        let actual = cipher?.blockID(of: plain) ?? hash(plain)
        guard actual == expectedHash else {
            throw ConvoyError(.driverFailure, "block \(expectedHash) is corrupt: its content hashes to \(actual)")
        }
    }
}

extension Sequence where Element == UInt8 {
    var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
