import ConvoyCore
import CZlib
import Crypto
import Foundation

/// Convoy 0.5 block (devicemapper) backups: `Blocks: [{Offset, BlockChecksum}]` in the backup's configuration,
/// each block a gzip file `convoy-objectstore/blocks/<c[0:2]>/<c[2:4]>/<c>.blk` whose name is the first 64 hex
/// digits of the SHA-512 of its (2 MiB) content; the volume's size in `volume.cfg`.
extension LegacyConvoyStore {
    struct VolumeConfig: Codable {
        var Size: Int64?
    }

    /// The volume's size as Convoy recorded it (0 when unknown).
    public func volumeSize(volume: String) async throws(ConvoyError) -> UInt64 {
        let key = "\(Self.volumePath(volume))/volume.cfg"
        guard let bytes = try? await store.get(key),
              let config = try? JSONDecoder().decode(VolumeConfig.self, from: Data(bytes)) else { return 0 }
        return UInt64(max(0, config.Size ?? 0))
    }

    /// One block's content, checked against its name.
    public func block(_ checksum: String) async throws(ConvoyError) -> [UInt8] {
        let hex = checksum.lowercased()
        guard hex.count == 64, hex.allSatisfy(\.isHexDigit) else {
            throw ConvoyError(.driverFailure, "the Convoy backup names an invalid block '\(checksum.prefix(80))'")
        }
        let key = "convoy-objectstore/blocks/\(hex.prefix(2))/\(hex.dropFirst(2).prefix(2))/\(hex).blk"
        let compressed: [UInt8]
        do { compressed = try await store.get(key) } catch where error.kind == .notFound {
            throw ConvoyError(.notFound, "Convoy block \(hex) is missing from \(store.location)")
        }
        let data = try Self.gunzip(compressed, name: hex)
        guard SHA512.hash(data: data).hexString.prefix(64) == hex else {
            throw ConvoyError(.driverFailure, "Convoy block \(hex) is corrupt: its content does not match its name")
        }
        return data
    }

    static func gunzip(_ input: [UInt8], name: String) throws(ConvoyError) -> [UInt8] {
        var stream = z_stream()
        guard convoy_inflate_init_gzip(&stream) == Z_OK else {
            throw ConvoyError(.internalFailure, "cannot initialise zlib")
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var status = Z_OK
        var source = input
        source.withUnsafeMutableBufferPointer { inputBuffer in
            stream.next_in = inputBuffer.baseAddress
            stream.avail_in = uInt(inputBuffer.count)
            repeat {
                chunk.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(out.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    output.append(contentsOf: out.prefix(out.count - Int(stream.avail_out)))
                }
            } while status == Z_OK && output.count <= 64 << 20
        }
        guard status == Z_STREAM_END else {
            throw ConvoyError(.driverFailure, "Convoy block \(name) is not valid gzip (zlib status \(status))")
        }
        return output
    }
}
