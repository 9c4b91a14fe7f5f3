@testable import Backupstore
import ConvoyCore
import ConvoyTestSupport
import XCTest

final class ChunkingAndCodecTests: XCTestCase {
    private func chunks(_ data: [UInt8], _ chunker: FastCDC = .standard) -> [[UInt8]] {
        var result: [[UInt8]] = []
        var start = 0
        data.withUnsafeBytes { raw in
            while start < raw.count {
                let length = chunker.cut(UnsafeRawBufferPointer(rebasing: raw[start...]))
                result.append(Array(raw[start..<(start + length)]))
                start += length
            }
        }
        return result
    }

    func testChunksRespectBoundsAndAverageAboutOneMebibyte() {
        let data = TreeFixture.randomBytes(64 << 20, seed: 5)
        let pieces = chunks(data)
        XCTAssertEqual(pieces.reduce(0) { $0 + $1.count }, data.count)
        for piece in pieces.dropLast() {
            XCTAssertGreaterThanOrEqual(piece.count, 256 << 10)
            XCTAssertLessThanOrEqual(piece.count, 4 << 20)
        }
        let average = data.count / pieces.count
        XCTAssertTrue((512 << 10)...(2 << 20) ~= average, "average chunk \(average)")
    }

    /// The cut points are part of the format: the two-bytes-a-step scan must cut exactly where the byte-at-a-time
    /// definition of FastCDC with normalized chunking does, on random and on text data, with chunk sizes small
    /// enough that cuts fall on odd and even positions and at the edge of the normalization point.
    func testCutPointsEqualTheByteAtATimeDefinition() {
        let words = "a backup reads every byte once and names each chunk by its hash ".utf8
        let text = (0..<200_000).map { index in
            words[words.index(words.startIndex, offsetBy: (index * 7) % words.count)]
        }
        let inputs = [TreeFixture.randomBytes(9 << 20, seed: 11), Array(text), TreeFixture.randomBytes(4097, seed: 12)]
        let chunkers = [FastCDC.standard, FastCDC(minimum: 64, average: 256, maximum: 1024),
                        FastCDC(minimum: 1, average: 2, maximum: 8),
                        FastCDC(minimum: 4096, average: 16384, maximum: 65536)]
        for chunker in chunkers {
            for input in inputs {
                var cuts = 0
                input.withUnsafeBytes { raw in
                    var start = 0
                    while start < raw.count {
                        let rest = UnsafeRawBufferPointer(rebasing: raw[start...])
                        let length = chunker.cut(rest)
                        XCTAssertEqual(length, referenceCut(rest, chunker), "at \(start), chunker \(chunker.average)")
                        guard length > 0 else { return }
                        start += length
                        cuts += 1
                    }
                }
                XCTAssertGreaterThan(cuts, 0)
            }
        }
    }

    /// `endsChunk` says where `cut` ends a chunk with more bytes after it: true at every cut `cut` makes there,
    /// false at every shorter length of that chunk (a backup keeps a parent's chunk only where it holds).
    func testEndsChunkHoldsExactlyWhereCutEndsAChunk() {
        let chunkers = [FastCDC.standard, FastCDC(minimum: 64, average: 256, maximum: 1024),
                        FastCDC(minimum: 1, average: 2, maximum: 8)]
        for chunker in chunkers {
            // Room for about 32 average chunks beyond the maximum (the minimum makes real ones longer).
            let input = TreeFixture.randomBytes(chunker.maximum + 32 * chunker.average, seed: 21)
            var checked = 0
            input.withUnsafeBytes { raw in
                var start = 0
                while raw.count - start > chunker.maximum {
                    let rest = UnsafeRawBufferPointer(rebasing: raw[start...])
                    let length = chunker.cut(rest)
                    XCTAssertTrue(chunker.endsChunk(UnsafeRawBufferPointer(rebasing: rest[0..<length])),
                                  "cut at \(start)+\(length), chunker \(chunker.average)")
                    // Every shorter length for the small chunkers; a sample for the 1 MiB one.
                    let step = chunker.maximum > 4096 ? 4099 : 1
                    for shorter in stride(from: 1, to: length, by: step) {
                        XCTAssertFalse(chunker.endsChunk(UnsafeRawBufferPointer(rebasing: rest[0..<shorter])),
                                       "no cut at \(start)+\(shorter), chunker \(chunker.average)")
                    }
                    start += length
                    checked += 1
                }
            }
            XCTAssertGreaterThan(checked, 8)
        }
    }

    /// FastCDC as defined, one byte at a time: masks on the hash's top bits, two more bits before the average
    /// size and two fewer after it.
    private func referenceCut(_ data: UnsafeRawBufferPointer, _ chunker: FastCDC) -> Int {
        func topBits(_ count: Int) -> UInt64 {
            count >= 64 ? UInt64.max : ((UInt64(1) << UInt64(count)) - 1) << UInt64(64 - count)
        }
        let bits = max(1, Int.bitWidth - 1 - chunker.average.leadingZeroBitCount)
        let (small, large) = (topBits(bits + 2), topBits(max(1, bits - 2)))
        if data.count <= chunker.minimum { return data.count }
        let end = min(data.count, chunker.maximum)
        var hash: UInt64 = 0
        for index in chunker.minimum..<end {
            hash = (hash << 1) &+ Gear.table[Int(data[index])]
            if hash & (index < min(end, chunker.average) ? small : large) == 0 { return index + 1 }
        }
        return end
    }

    func testAnInsertionChangesOnlyNearbyChunks() {
        let data = TreeFixture.randomBytes(32 << 20, seed: 6)
        var shifted = data
        shifted.insert(contentsOf: [1, 2, 3, 4, 5], at: 10 << 20)
        let before = Set(chunks(data).map(BlockCodec.hash))
        let after = chunks(shifted).map(BlockCodec.hash)
        let changed = after.filter { !before.contains($0) }.count
        XCTAssertLessThanOrEqual(changed, 2, "an insertion re-chunked \(changed) of \(after.count) chunks")
    }

    func testBlocksRoundTripAndDamageIsCaught() throws {
        let text = Array(String(repeating: "compressible ", count: 10_000).utf8)
        let random = TreeFixture.randomBytes(100_000, seed: 3)
        for plain in [text, random, []] {
            let hash = BlockCodec.hash(plain)
            let encoded = plain.withUnsafeBytes { BlockCodec.encode($0) }
            XCTAssertEqual(try BlockCodec.decode(encoded, expectedHash: hash), plain)
            if plain == text { XCTAssertLessThan(encoded.count, plain.count / 10, "text is compressed") }
            if plain == random { XCTAssertEqual(encoded.first, 0, "random data is stored raw") }
            if encoded.count > 1 {
                var damaged = encoded
                damaged[damaged.count / 2] ^= 0x01
                XCTAssertThrowsError(try BlockCodec.decode(damaged, expectedHash: hash))
            }
        }
    }

    func testURLsParse() throws {
        XCTAssertEqual(try StoreLocation.parse("vfs:///srv/backups/"), .directory(path: "/srv/backups"))
        XCTAssertEqual(try StoreLocation.parse("s3://bucket@us-east-1/some/path"),
                       .s3(bucket: "bucket", region: "us-east-1", prefix: "some/path"))
        XCTAssertEqual(try StoreLocation.parse("s3://bucket@eu-west-1"),
                       .s3(bucket: "bucket", region: "eu-west-1", prefix: ""))
        for bad in ["vfs://relative", "vfs:///a/../b", "s3://bucket/path", "ftp://x", "s3://@r/p"] {
            XCTAssertThrowsError(try StoreLocation.parse(bad), bad)
        }
        let url = try BackupURL.parse("vfs:///srv/b?backup=backup-0123456789abcdef&volume=vol1")
        XCTAssertEqual(url.volume, "vol1")
        XCTAssertEqual(url.backupID, "backup-0123456789abcdef")
        XCTAssertEqual(url.url, "vfs:///srv/b?backup=backup-0123456789abcdef&volume=vol1")
        XCTAssertThrowsError(try BackupURL.parse("vfs:///srv/b?backup=x&volume=../etc"))
        XCTAssertThrowsError(try BackupURL.parse("vfs:///srv/b"))
    }

    /// A parent's chunks cut with other sizes (a file under `FastCDC.largeFile` backed up before its size chose
    /// its chunk sizes, or once larger) are kept only where a rescan with this file's sizes would cut the same:
    /// the chunks kept and cut anew are exactly a rescan's. Without the scan for earlier cut points, 1 MiB
    /// chunks were kept whole in a file now cut at 256 KiB.
    func testParentChunksOfOtherSizesAreKeptOnlyWhereARescanCutsTheSame() {
        for (seed, parentSize) in [(UInt64(91), 3 << 20), (92, 20 << 20)] {
            let data = TreeFixture.randomBytes(3 << 20, seed: seed)
            var offset: UInt64 = 0
            var parent = Entry(path: "file", type: .file, mode: 0o644, uid: 0, gid: 0, mtimeSeconds: 0,
                               mtimeNanoseconds: 0, size: UInt64(parentSize))
            parent.chunks = chunks(data, .standard).map { piece in
                defer { offset += UInt64(piece.count) }
                return Chunk(hash: BlockCodec.hash(piece), offset: offset, length: UInt32(piece.count),
                             checksum: BlockChecksum.of(piece))
            }
            let now = FastCDC.forFile(ofSize: UInt64(data.count))
            var kept = 0
            var lengths: [Int] = []
            data.withUnsafeBytes { raw in
                var parentChunks = ParentChunks(parent, chunker: now)
                var start = 0
                while start < raw.count {
                    let rest = UnsafeRawBufferPointer(rebasing: raw[start...])
                    if let unchanged = parentChunks?.unchanged(at: UInt64(start), rest, atDataEnd: true) {
                        kept += 1
                        lengths.append(unchanged.length)
                    } else {
                        lengths.append(now.cut(rest))
                    }
                    start += lengths[lengths.count - 1]
                }
            }
            XCTAssertEqual(lengths, chunks(data, now).map(\.count), "parent of \(parentSize) bytes")
            XCTAssertTrue((parent.chunks ?? []).contains { $0.length <= UInt32(now.maximum) },
                          "no parent chunk short enough to be offered")
            XCTAssertLessThanOrEqual(kept, 1, "only the last chunk may be one a rescan also cuts")
        }
    }
}
