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
        XCTAssertEqual(try StoreLocation.parse("s3://bucket@us-east-1/some/path"), .s3(bucket: "bucket", region: "us-east-1", prefix: "some/path"))
        XCTAssertEqual(try StoreLocation.parse("s3://bucket@eu-west-1"), .s3(bucket: "bucket", region: "eu-west-1", prefix: ""))
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
}
