@testable import Backupstore
import ConvoyCore
import XCTest

final class ManifestCodecTests: XCTestCase {
    func sample() -> Manifest {
        var file = Entry(path: "dir/ünïcode file", type: .file, mode: 0o4755, uid: 1234, gid: 5678,
                         mtimeSeconds: -86_400, mtimeNanoseconds: 999_999_999, size: 5 << 30)
        file.chunks = [Chunk(hash: String(repeating: "ab", count: 32), offset: 0, length: 1 << 20),
                       Chunk(hash: String(repeating: "0f", count: 32), offset: 4 << 30, length: 7)]
        file.inode = 42
        file.xattrs = ["user.a": "Ymx1ZQ==", "security.b": ""]
        var link = Entry(path: "l", type: .symlink, mode: 0o777, uid: 0, gid: 0, mtimeSeconds: 1, mtimeNanoseconds: 0, size: 0)
        link.target = "../somewhere"
        var device = Entry(path: "d", type: .blockDevice, mode: 0o600, uid: 0, gid: 6, mtimeSeconds: 2, mtimeNanoseconds: 3, size: 0)
        device.rdev = 2049
        let root = Entry(path: "", type: .directory, mode: 0o755, uid: 0, gid: 0, mtimeSeconds: 1_700_000_000, mtimeNanoseconds: 1, size: 0)
        var stats = Manifest.Stats()
        stats.files = 1
        stats.bytes = 5 << 30
        stats.newBlocks = 2
        return Manifest(id: "backup-0123456789abcdef", volume: "vol1", kind: .files, createdAt: "2026-11-26T00:00:00Z",
                        snapshot: "snap", parent: nil, volumeSize: 10 << 30, entries: [root, file, link, device], stats: stats)
    }

    func testRoundTripKeepsEveryField() throws {
        let manifest = sample()
        XCTAssertEqual(try ManifestCodec.decode(ManifestCodec.encode(manifest)), manifest)
        XCTAssertEqual(try SealedObject.openManifest(SealedObject.sealManifest(manifest), what: "m"), manifest)
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
