import ConvoyCore
import Crypto
import Foundation

/// Manifests (binary, ManifestCodec) and records (JSON), zstd-compressed, with a magic and the SHA-256 of the
/// payload in front, so a truncated or damaged one is detected instead of half-read (Convoy broke on truncated
/// JSON after power loss).
enum SealedObject {
    static let magic: [UInt8] = Array("CVS1".utf8)
    static let manifestMagic: [UInt8] = Array("CVM1".utf8)

    static func seal<T: Encodable>(_ value: T) throws(ConvoyError) -> [UInt8] {
        let json: [UInt8]
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            json = Array(try encoder.encode(value))
        } catch {
            throw ConvoyError(.internalFailure, "cannot encode \(T.self): \(error)")
        }
        return wrap(json, magic: magic)
    }

    static func sealManifest(_ manifest: Manifest) -> [UInt8] {
        wrap(ManifestCodec.encode(manifest), magic: manifestMagic)
    }

    static func openManifest(_ bytes: [UInt8], what: String) throws(ConvoyError) -> Manifest {
        try ManifestCodec.decode(try unwrap(bytes, magic: manifestMagic, what: what))
    }

    static func wrap(_ payload: [UInt8], magic: [UInt8]) -> [UInt8] {
        let digest = Array(SHA256.hash(data: payload))
        let body = payload.withUnsafeBytes { Zstd.compress($0) } ?? []
        return magic + digest + body
    }

    static func unwrap(_ bytes: [UInt8], magic: [UInt8], what: String) throws(ConvoyError) -> [UInt8] {
        guard bytes.count > 36, Array(bytes[0..<4]) == magic else {
            throw ConvoyError(.driverFailure, "\(what) is damaged (bad header)")
        }
        let digest = Array(bytes[4..<36])
        let payload: [UInt8]
        do { payload = try Zstd.decompress(bytes[36...], limit: payloadLimit(compressed: bytes.count - 36)) } catch {
            throw ConvoyError(.driverFailure, "\(what) is damaged (\(error.message))")
        }
        guard Array(SHA256.hash(data: payload)) == digest else {
            throw ConvoyError(.driverFailure, "\(what) is damaged (checksum mismatch)")
        }
        return payload
    }

    /// The most a payload may claim, which the frame's header states before anything is decompressed: 1 GiB, and
    /// never more than `compressed` bytes of zstd can hold (a block of at most 128 KiB takes at least 4 bytes, so
    /// 32768 times as much), so a few crafted bytes cannot make every reader allocate a gigabyte.
    static func payloadLimit(compressed: Int) -> Int {
        let ceiling = 1 << 30, ratio = 32768
        return compressed >= ceiling / ratio ? ceiling : compressed * ratio
    }

    static func open<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], what: String) throws(ConvoyError) -> T {
        let json = try unwrap(bytes, magic: magic, what: what)
        do {
            return try JSONDecoder().decode(T.self, from: Data(json))
        } catch {
            throw ConvoyError(.driverFailure, "\(what) cannot be read: \(error)")
        }
    }
}
