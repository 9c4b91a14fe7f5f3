import Crypto
import Foundation

/// The hashes SigV4 and S3 ask for, in the text forms they ask for.
enum Digests {
    static func sha256Hex<Bytes: DataProtocol>(_ data: Bytes) -> String {
        hex(SHA256.hash(data: data))
    }

    static func sha256Hex(_ string: String) -> String {
        sha256Hex(Array(string.utf8))
    }

    /// `Content-MD5`, which S3 requires on DeleteObjects: base64 of the raw digest. MD5 is S3's choice here.
    static func md5Base64<Bytes: DataProtocol>(_ data: Bytes) -> String {
        Data(Insecure.MD5.hash(data: data)).base64EncodedString()
    }

    static func hmacSHA256(key: some ContiguousBytes, _ message: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: key)))
    }

    static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out = [UInt8]()
        for byte in bytes {
            out.append(hexDigits[Int(byte >> 4)])
            out.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}
