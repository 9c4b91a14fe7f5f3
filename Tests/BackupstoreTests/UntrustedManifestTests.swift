@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import Foundation
import XCTest

/// Manifests and indexes come from a store anyone able to write the bucket can craft (issue 18): each input below
/// trapped, allocated from a count in the input, or slipped past a check before; now each is a thrown ConvoyError
/// that names what is malformed.
final class UntrustedManifestTests: XCTestCase {
    /// A manifest's payload written field by field, to say what the encoder never would.
    struct Payload {
        var out = ByteWriter()

        init(format: UInt64 = 2, stats: UInt64 = 0, entries: UInt64) {
            out.varint(format)
            for text in ["backup-1", "vol", "files", "2026-01-01T00:00:00Z"] { out.string(text) }
            out.optionalString(nil)
            out.optionalString(nil)
            out.varint(0)
            for _ in 0..<6 { out.varint(stats) }
            out.varint(entries)
        }

        mutating func entry(_ path: String = "", type: UInt8 = 0, mode: UInt64 = 0o755, nanoseconds: Int64 = 0,
                            size: UInt64 = 0, flags: UInt8 = 0) {
            out.string(path)
            out.bytes.append(type)
            out.varint(mode)
            out.varint(0)
            out.varint(0)
            out.signed(0)
            out.signed(nanoseconds)
            out.varint(size)
            out.bytes.append(flags)
        }

        /// Flag 8's list: `chunks` as (offset, length).
        mutating func chunks(_ chunks: [(UInt64, UInt64)], count: UInt64? = nil) {
            out.varint(count ?? UInt64(chunks.count))
            for (offset, length) in chunks {
                out.hash(String(repeating: "ab", count: 32))
                out.varint(offset)
                out.varint(length)
            }
        }
    }

    func assertMalformed(_ bytes: [UInt8], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ManifestCodec.decode(bytes), file: file, line: line) { error in
            XCTAssertEqual((error as? ConvoyError)?.kind, .driverFailure, file: file, line: line)
            XCTAssertTrue("\(error)".contains(what), "\(error) does not name \(what)", file: file, line: line)
        }
    }

    func testCountsBeyondTheInputAreRefusedNotTrustedOrTrapped() {
        // Int(2^63) trapped; a count below that reserved capacity from it.
        assertMalformed(Payload(entries: 1 << 63).out.bytes, "entry count")
        assertMalformed(Payload(entries: UInt64.max).out.bytes, "entry count")
        assertMalformed(Payload(entries: 1 << 40).out.bytes, "entry count")

        var string = ByteWriter()
        string.varint(2)
        string.varint(1 << 63)
        assertMalformed(string.bytes, "string length")

        var xattrs = Payload(entries: 1)
        xattrs.entry(flags: 4)
        xattrs.out.varint(1 << 63)
        assertMalformed(xattrs.out.bytes, "xattr count of ''")

        var chunks = Payload(entries: 1)
        chunks.entry("f", type: 1, size: 10, flags: 8)
        chunks.chunks([(0, 10)], count: 1 << 62)
        assertMalformed(chunks.out.bytes, "chunk count of 'f'")
    }

    func testIntegersThatDoNotFitTheirFieldsAreRefused() {
        var format = ByteWriter()
        format.varint(UInt64.max)
        XCTAssertThrowsError(try ManifestCodec.decode(format.bytes)) { error in
            XCTAssertEqual((error as? ConvoyError)?.kind, .conflict)
            XCTAssertTrue("\(error)".contains("upgrade convoy"), "\(error)")
        }
        // Ten bytes whose last holds more than the 64th bit, and an eleventh byte: bits were dropped silently.
        assertMalformed([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], "varint")
        assertMalformed([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x81, 0x00], "varint")

        var mode = Payload(entries: 1)
        mode.entry(mode: 1 << 32)
        assertMalformed(mode.out.bytes, "mode of ''")

        var length = Payload(entries: 1)
        length.entry("f", type: 1, size: 1 << 40, flags: 8)
        length.chunks([(0, (1 << 32) + 5)])
        assertMalformed(length.out.bytes, "chunk length in 'f'")

        var nanoseconds = Payload(entries: 1)
        nanoseconds.entry(nanoseconds: 1_000_000_000)
        assertMalformed(nanoseconds.out.bytes, "modification time of ''")

        var flags = Payload(entries: 1)
        flags.entry(flags: 64)
        assertMalformed(flags.out.bytes, "flags of ''")
    }

    /// Statistics are only shown: a huge one is clamped (Int(varint) trapped).
    func testStatisticsBeyondIntAreClamped() throws {
        var payload = Payload(stats: UInt64.max, entries: 1)
        payload.entry()
        let manifest = try ManifestCodec.decode(payload.out.bytes)
        XCTAssertEqual(manifest.stats.files, Int.max)
        XCTAssertEqual(manifest.stats.bytes, UInt64.max)
    }

    func testSizesAndChunkEndsStayWithinWhatAnOffTHolds() {
        // offset + length overflowed in every reader (mount, hydration); past Int64.max it trapped in off_t(...).
        var overflow = Payload(entries: 1)
        overflow.entry("f", type: 1, size: 10, flags: 8)
        overflow.chunks([(UInt64.max, 1)])
        assertMalformed(overflow.out.bytes, "chunk offset 18446744073709551615 in 'f'")
        var beyondOffT = Payload(entries: 1)
        beyondOffT.entry("f", type: 1, size: 10, flags: 8)
        beyondOffT.chunks([(UInt64(Int64.max), 1)])
        assertMalformed(beyondOffT.out.bytes, "chunk offset")

        var size = Payload(entries: 1)
        size.entry("f", type: 1, size: UInt64(Int64.max) + 1)
        assertMalformed(size.out.bytes, "size of 'f'")
        // Three sizes an off_t holds, whose sum does not fit 64 bits (progress totals added them up).
        var sum = Payload(entries: 3)
        for name in ["a", "b", "c"] { sum.entry(name, type: 1, size: UInt64(Int64.max)) }
        assertMalformed(sum.out.bytes, "sizes that add up to more than 2^64 bytes")
    }

    /// A second value for an xattr name replaced the first silently.
    func testDuplicateXattrsAreRefused() {
        var payload = Payload(entries: 1)
        payload.entry(flags: 4)
        payload.out.varint(2)
        for value in ["YQ==", "Yg=="] {
            payload.out.string("user.a")
            payload.out.string(value)
        }
        assertMalformed(payload.out.bytes, "xattr 'user.a' of '', listed twice")
    }

    /// Layout (order, overlap, size) is the restore's and the mount's to refuse: a manifest that breaks it still
    /// decodes, so garbage collection keeps its blocks.
    func testLayoutProblemsDecodeButAreNotRestored() throws {
        var payload = Payload(entries: 2)
        payload.entry()
        payload.entry("f", type: 1, size: 4, flags: 8)
        payload.chunks([(0, 10)])
        let manifest = try ManifestCodec.decode(payload.out.bytes)
        XCTAssertEqual(manifest.blockHashes, [String(repeating: "ab", count: 32)])
        XCTAssertThrowsError(try FileRestorer.plan(manifest)) { error in
            XCTAssertTrue("\(error)".contains("chunks past the end of 'f'"), "\(error)")
        }
    }

    /// A block backup's chunks overlapping (or past the image) would overwrite one another on the device.
    func testABlockRestoreRefusesOverlappingChunksBeforeWriting() async throws {
        let directory = try TreeFixture.temporaryDirectory("overlap")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let device = directory + "/device"
        XCTAssertTrue(FileManager.default.createFile(atPath: device, contents: Data(repeating: 7, count: 8192)))
        var image = Entry(path: Manifest.imagePath, type: .file, mode: 0o600, uid: 0, gid: 0, mtimeSeconds: 0,
                          mtimeNanoseconds: 0, size: 8192)
        let hash = String(repeating: "ab", count: 32)
        image.chunks = [Chunk(hash: hash, offset: 0, length: 4096), Chunk(hash: hash, offset: 2048, length: 4096)]
        let manifest = Manifest(id: "backup-0000000000000001", volume: "vol", kind: .blocks, createdAt: "",
                                snapshot: nil, parent: nil, volumeSize: 8192, entries: [image], stats: .init())
        let restorer = BlockRestorer(repository: BackupRepository(store: try FileObjectStore(root: directory)))
        do throws(ConvoyError) {
            try await restorer.restore(manifest, onto: device)
            XCTFail("overlapping chunks were restored")
        } catch {
            XCTAssertTrue(error.message.contains("overlapping chunks"), error.message)
        }
        XCTAssertEqual(FileManager.default.contents(atPath: device), Data(repeating: 7, count: 8192), "written to")
    }

    func testPackIndexCountsAndPlacesAreBounded() {
        var count = ByteWriter()
        count.varint(1 << 63)
        XCTAssertThrowsError(try PackIndexCodec.decodePayload(count.bytes, what: "index")) { error in
            XCTAssertTrue("\(error)".contains("index is malformed (entry count)"), "\(error)")
        }
        var offset = ByteWriter()
        offset.varint(1)
        offset.hash(String(repeating: "cd", count: 32))
        offset.varint(UInt64.max)
        offset.varint(10)
        XCTAssertThrowsError(try PackIndexCodec.decodePayload(offset.bytes, what: "index")) { error in
            XCTAssertTrue("\(error)".contains("entry of block"), "\(error)")
        }
        let valid = [PackEntry(hash: String(repeating: "cd", count: 32), offset: 7, length: 9)]
        XCTAssertEqual(try PackIndexCodec.decode(PackIndexCodec.encode(valid), pack: "p"), valid)
    }

    /// A zstd frame's header states its content size: a 20-byte object claiming 1 GiB made each reader allocate
    /// 1 GiB before finding out the frame was bogus. Now nothing beyond what the compressed bytes can hold.
    func testSealedPayloadsClaimNoMoreThanTheirBytesCanHold() {
        var frame: [UInt8] = [0x28, 0xb5, 0x2f, 0xfd, 0xe0]  // zstd magic; single segment, 8-byte content size
        frame += withUnsafeBytes(of: UInt64(1 << 30).littleEndian) { Array($0) }
        frame += [0x01, 0x00, 0x00]
        let sealed = SealedObject.manifestMagic + [UInt8](repeating: 0, count: 32) + frame
        XCTAssertThrowsError(try SealedObject.openManifest(sealed, what: "manifest of backup x")) { error in
            XCTAssertTrue("\(error)".contains("manifest of backup x is damaged (not a valid compressed block)"),
                          "\(error)")
        }
        XCTAssertEqual(SealedObject.payloadLimit(compressed: 16), 16 * 32768)
        XCTAssertEqual(SealedObject.payloadLimit(compressed: 1 << 20), 1 << 30)
        XCTAssertEqual(SealedObject.payloadLimit(compressed: Int.max), 1 << 30)
        // What zstd makes of zeros, about its best case, fits.
        let zeros = [UInt8](repeating: 0, count: 16 << 20)
        XCTAssertEqual(try SealedObject.unwrap(SealedObject.wrap(zeros, magic: SealedObject.magic),
                                               magic: SealedObject.magic, what: "zeros").count, zeros.count)
    }
}
