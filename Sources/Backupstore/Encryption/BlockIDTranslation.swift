import ConvoyCore

/// How the block ids of a backup in one store become its ids in another: the same between plain stores (and
/// between views of one key); a plain id (a SHA-256) keyed for an encrypted destination without reading anything;
/// an encrypted source's blocks read once to learn their content's hash, since a keyed id cannot be turned back.
enum BlockIDTranslation {
    /// Source id → destination id for every id of `hashes`; nil when they are the same.
    static func map(_ hashes: Set<String>, checksums: [String: BlockChecksum], from source: BackupRepository,
                    to destination: BackupRepository) async throws(ConvoyError) -> [String: String]? {
        guard let target = destination.cipher else {
            guard source.cipher != nil else { return nil }
            return try await byReading(hashes, checksums: checksums, from: source) { BlockCodec.hash($0) }
        }
        guard let sourceCipher = source.cipher else {
            var result: [String: String] = [:]
            for hash in hashes {
                guard let keyed = target.blockID(plainID: hash) else {
                    throw ConvoyError(.driverFailure, "block id \(hash) of \(source.store.location) is not a SHA-256")
                }
                result[hash] = keyed
            }
            return result
        }
        if sourceCipher.hasSameKey(as: target) { return nil }
        return try await byReading(hashes, checksums: checksums, from: source) { plain in target.blockID(of: plain) }
    }

    private static func byReading(_ hashes: Set<String>, checksums: [String: BlockChecksum],
                                  from source: BackupRepository,
                                  id: (UnsafeRawBufferPointer) -> String)
        async throws(ConvoyError) -> [String: String] {
        var result: [String: String] = [:]
        for hash in hashes.sorted() {
            let plain = try await source.plainBlockReadOnce(hash, checksum: checksums[hash])
            result[hash] = plain.withUnsafeBytes { id($0) }
        }
        return result
    }
}
