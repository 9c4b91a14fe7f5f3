@testable import Backupstore
import ConvoyCore
import XCTest

final class ManifestCodecTests: XCTestCase {
    func sample() -> Manifest {
        var file = Entry(path: "dir/ünïcode file", type: .file, mode: 0o4755, uid: 1234, gid: 5678,
                         mtimeSeconds: -86_400, mtimeNanoseconds: 999_999_999, size: 5 << 30)
        // One chunk with a checksum, one without (reused from a format 1 manifest).
        file.chunks = [Chunk(hash: String(repeating: "ab", count: 32), offset: 0, length: 1 << 20,
                             checksum: BlockChecksum(high: 0x0123_4567_89ab_cdef, low: 0xfedc_ba98_7654_3210)),
                       Chunk(hash: String(repeating: "0f", count: 32), offset: 4 << 30, length: 7)]
        file.inode = 42
        file.xattrs = ["user.a": "Ymx1ZQ==", "security.b": ""]
        var link = Entry(path: "l", type: .symlink, mode: 0o777, uid: 0, gid: 0, mtimeSeconds: 1,
                         mtimeNanoseconds: 0, size: 0)
        link.target = "../somewhere"
        var device = Entry(path: "d", type: .blockDevice, mode: 0o600, uid: 0, gid: 6, mtimeSeconds: 2,
                           mtimeNanoseconds: 3, size: 0)
        device.rdev = 2049
        let root = Entry(path: "", type: .directory, mode: 0o755, uid: 0, gid: 0, mtimeSeconds: 1_700_000_000,
                         mtimeNanoseconds: 1, size: 0)
        var stats = Manifest.Stats()
        stats.files = 1
        stats.bytes = 5 << 30
        stats.newBlocks = 2
        return Manifest(id: "backup-0123456789abcdef", volume: "vol1", kind: .files, createdAt: "2026-11-26T00:00:00Z",
                        snapshot: "snap", parent: nil, volumeSize: 10 << 30, entries: [root, file, link, device],
                        stats: stats)
    }

    func testRoundTripKeepsEveryField() throws {
        let manifest = sample()
        XCTAssertEqual(try ManifestCodec.decode(ManifestCodec.encode(manifest)), manifest)
        XCTAssertEqual(try SealedObject.openManifest(SealedObject.sealManifest(manifest), what: "m"), manifest)
    }

    /// A format 1 manifest (no checksums) is read as it was written; a format newer than this code is refused.
    func testFormatOneIsReadAndNewerFormatsAreRefused() throws {
        var old = sample()
        old.format = 1
        for index in old.entries.indices {
            old.entries[index].chunks = old.entries[index].chunks?.map {
                Chunk(hash: $0.hash, offset: $0.offset, length: $0.length)
            }
        }
        let bytes = ManifestCodec.encode(old)
        XCTAssertEqual(try ManifestCodec.decode(bytes), old)
        XCTAssertEqual(bytes.first, 1)
        // A format 1 manifest that gained checksums is written as format 2.
        var upgraded = sample()
        upgraded.format = 1
        XCTAssertEqual(ManifestCodec.encode(upgraded).first, 2)
        var newer = ManifestCodec.encode(sample())
        XCTAssertEqual(newer.first, UInt8(Manifest.currentFormat))
        newer[0] = UInt8(Manifest.currentFormat + 1)
        XCTAssertThrowsError(try ManifestCodec.decode(newer)) { error in
            XCTAssertTrue("\(error)".contains("upgrade convoy"), "\(error)")
        }
    }

    /// The writing host (format 3) round-trips; a manifest read in an older format that gains a host is written
    /// as format 3, so older convoy refuses it instead of misreading it.
    func testTheWritingHostIsKeptInFormatThree() throws {
        var manifest = sample()
        manifest.host = "host-a"
        let bytes = ManifestCodec.encode(manifest)
        XCTAssertEqual(bytes.first, 3)
        XCTAssertEqual(try ManifestCodec.decode(bytes).host, "host-a")
        var older = sample()
        older.format = 2
        XCTAssertEqual(ManifestCodec.encode(older).first, 2, "no host: the format it was read in")
        older.host = "host-b"
        XCTAssertEqual(ManifestCodec.encode(older).first, 3)
        XCTAssertEqual(try ManifestCodec.decode(ManifestCodec.encode(older)), older.with(format: 3))
    }

    func testChecksumsPrintAsXXH128Does() {
        // xxhsum -H2 of the empty input.
        XCTAssertEqual(BlockChecksum.of([UInt8]()).description, "99aa06d3014798d86001c324468d497f")
    }

    func testTruncatedOrDamagedInputIsRefused() {
        let bytes = ManifestCodec.encode(sample())
        for cut in [1, bytes.count / 2, bytes.count - 1] {
            XCTAssertThrowsError(try ManifestCodec.decode(Array(bytes[0..<cut])), "cut at \(cut)")
        }
        var sealed = SealedObject.sealManifest(sample())
        sealed[sealed.count - 3] ^= 0x40
        XCTAssertThrowsError(try SealedObject.openManifest(sealed, what: "m"))
    }
}

private extension Manifest {
    func with(format: Int) -> Manifest {
        var copy = self
        copy.format = format
        return copy
    }
}
