import ConvoyCore
import Crypto
import Foundation

/// The keys of an encrypted store, derived from its 256-bit master key: one seals objects (AES-256-GCM), the other
/// names blocks (HMAC-SHA-256 of the block's SHA-256), so an id reveals nothing to whoever lacks the key (not even
/// that the store holds a file they know) while blocks of equal content still share one id: dedup keeps working
/// across the volumes of one store. Keyed over the digest rather than the bytes so that a plain store's ids map to
/// an encrypted one's without reading a block (a backup copied from the local snapshot store).
public struct StoreCipher: Sendable {
    // Bytes, not SymmetricKey, which is not Sendable; a key is made from them per use (a copy of 32 bytes).
    private let master: [UInt8]
    private let data: [UInt8]
    private let ids: [UInt8]
    var masterKey: SymmetricKey { SymmetricKey(data: master) }
    private var dataKey: SymmetricKey { SymmetricKey(data: data) }
    private var idKey: SymmetricKey { SymmetricKey(data: ids) }
    /// Sealing adds a 12-byte nonce and a 16-byte tag.
    static let overhead = 28

    public init(masterKey: SymmetricKey) {
        master = masterKey.withUnsafeBytes { Array($0) }
        data = HKDF<SHA256>.deriveKey(inputKeyMaterial: masterKey, info: Array("convoy data key".utf8),
                                      outputByteCount: 32).withUnsafeBytes { Array($0) }
        ids = HKDF<SHA256>.deriveKey(inputKeyMaterial: masterKey, info: Array("convoy block id key".utf8),
                                     outputByteCount: 32).withUnsafeBytes { Array($0) }
    }

    /// A new random master key.
    static func generate() -> StoreCipher { StoreCipher(masterKey: SymmetricKey(size: .bits256)) }

    /// The block id of plain content.
    func blockID(of plain: UnsafeRawBufferPointer) -> String {
        blockID(digest: Array(SHA256.hash(data: plain)))
    }

    /// The id in this store of a block a plain store names `plainID` (its SHA-256 in hex); nil for a malformed id.
    func blockID(plainID: String) -> String? {
        guard let digest = HexBytes.decode(plainID), digest.count == 32 else { return nil }
        return blockID(digest: digest)
    }

    private func blockID(digest: [UInt8]) -> String {
        Array(HMAC<SHA256>.authenticationCode(for: digest, using: idKey)).hexString
    }

    /// `plain` sealed: nonce, ciphertext, tag. `context` (the block id, the object's key) is authenticated with it,
    /// so an object moved to another name, or a block to another id, fails to open instead of being misread.
    func seal(_ plain: UnsafeRawBufferPointer, context: String) throws(ConvoyError) -> [UInt8] {
        Array(try sealData(plain, context: context))
    }

    /// `seal`, left in the Data encryption made (a block on its way to a pack: no copy into an array).
    func sealData(_ plain: UnsafeRawBufferPointer, context: String) throws(ConvoyError) -> Data {
        do {
            let box = try AES.GCM.seal(plain, using: dataKey, authenticating: Array(context.utf8))
            guard let combined = box.combined else {
                throw ConvoyError(.internalFailure, "AES-GCM gave no combined form for \(context)")
            }
            return combined
        } catch let error as ConvoyError {
            throw error
        } catch {
            throw ConvoyError(.internalFailure, "cannot encrypt \(context): \(error)")
        }
    }

    func seal(_ plain: [UInt8], context: String) throws(ConvoyError) -> [UInt8] {
        let result: Result<[UInt8], ConvoyError> = plain.withUnsafeBytes { bytes in
            do throws(ConvoyError) { return .success(try seal(bytes, context: context)) } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// The plain bytes of what `seal` made with the same context; a damaged object, another store's or one
    /// moved to another name is refused (GCM's tag), never returned as garbage.
    func open(_ sealed: UnsafeRawBufferPointer, context: String, what: String) throws(ConvoyError) -> [UInt8] {
        Array(try openData(sealed, context: context, what: what))
    }

    /// `open`, the plain bytes left in the Data decryption made (no copy into an array).
    func openData(_ sealed: UnsafeRawBufferPointer, context: String, what: String) throws(ConvoyError) -> Data {
        guard sealed.count >= Self.overhead else {
            throw ConvoyError(.driverFailure, "\(what) is damaged (\(sealed.count) bytes: too short to be sealed)")
        }
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            return try AES.GCM.open(box, using: dataKey, authenticating: Array(context.utf8))
        } catch {
            throw ConvoyError(.driverFailure, "\(what) does not open with this store's key: it is damaged, or was "
                + "written with another key or under another name")
        }
    }

    func open(_ sealed: ObjectBytes, context: String, what: String) throws(ConvoyError) -> [UInt8] {
        Array(try openData(sealed, context: context, what: what))
    }

    func openData(_ sealed: ObjectBytes, context: String, what: String) throws(ConvoyError) -> Data {
        try sealed.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) throws(ConvoyError) in
            try openData(bytes, context: context, what: what)
        }
    }
}

enum HexBytes {
    /// The bytes of lowercase or uppercase hex, or nil.
    static func decode(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func value(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension StoreCipher {
    /// Whether both were opened from the same master key (two views of one store).
    func hasSameKey(as other: StoreCipher) -> Bool {
        master == other.master
    }
}
