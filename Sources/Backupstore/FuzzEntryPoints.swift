import ConvoyCore

/// The decoders of what a store holds, reachable from the fuzz targets (Sources/ConvoyFuzz) and their regression
/// tests. Anyone who can write the bucket can write these objects, so each must return or throw a ConvoyError on
/// any input: never trap, never allocate or loop beyond what the input's size allows.
public enum FuzzEntryPoints {
    /// A manifest's payload (ManifestCodec), as it is once unsealed.
    public static func manifest(_ bytes: [UInt8]) throws(ConvoyError) -> Manifest {
        try ManifestCodec.decode(bytes)
    }

    /// A pack index's payload (PackIndexCodec), as it is once unsealed.
    public static func packIndex(_ bytes: [UInt8]) throws(ConvoyError) {
        _ = try PackIndexCodec.decodePayload(bytes, what: "fuzzed pack index")
    }

    /// A sealed object as stored (header, zstd frame, digest), opened as what its magic says.
    public static func sealed(_ bytes: [UInt8]) throws(ConvoyError) {
        let magic = Array(bytes.prefix(4))
        if magic == PackIndexCodec.magic {
            _ = try PackIndexCodec.decode(bytes, pack: "fuzzed")
        } else if magic == SealedObject.magic {
            _ = try SealedObject.open(VolumeRecordInStore.self, bytes, what: "fuzzed record")
        } else {
            _ = try SealedObject.openManifest(bytes, what: "fuzzed manifest")
        }
    }

    /// A volume record's JSON, sealed here: its digest holds, so the fuzzer's bytes reach the JSON decoder (a
    /// writer of the bucket can seal anything just as well).
    public static func record(_ bytes: [UInt8]) throws(ConvoyError) {
        let sealed = SealedObject.wrap(bytes, magic: SealedObject.magic)
        _ = try SealedObject.open(VolumeRecordInStore.self, sealed, what: "fuzzed record")
    }

    /// The checks a file restore makes before it writes anything.
    public static func restorePlan(_ manifest: Manifest) throws(ConvoyError) {
        _ = try FileRestorer.plan(manifest)
    }

    // MARK: Seeds

    /// A manifest's payload, to seed the fuzzer with valid structures.
    public static func encode(_ manifest: Manifest) -> [UInt8] {
        ManifestCodec.encode(manifest)
    }

    public static func seal(_ manifest: Manifest) -> [UInt8] {
        SealedObject.sealManifest(manifest)
    }

    /// A record's JSON, sealed as stored.
    public static func sealRecord(json: [UInt8]) -> [UInt8] {
        SealedObject.wrap(json, magic: SealedObject.magic)
    }

    /// A pack index's payload (`sealed`: as stored) listing blocks as (hash, offset, length).
    public static func packIndex(_ blocks: [(hash: String, offset: Int, length: Int)], sealed: Bool) -> [UInt8] {
        let entries = blocks.map { PackEntry(hash: $0.hash, offset: $0.offset, length: $0.length) }
        return sealed ? PackIndexCodec.encode(entries) : PackIndexCodec.encodePayload(entries)
    }
}
