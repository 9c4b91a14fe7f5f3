import CFuse
#if canImport(Glibc)
import Glibc
#endif

/// Zeroed memory that holes are sent from; immutable once made, so any FUSE thread may use it.
final class ZeroBytes: @unchecked Sendable {
    let memory: UnsafeMutableRawPointer
    let count: Int

    init(count: Int) {
        self.count = max(1, count)
        memory = UnsafeMutableRawPointer.allocate(byteCount: self.count, alignment: 4096)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: self.count)
    }

    deinit { memory.deallocate() }
}

/// Replies to FUSE requests that carry bytes.
enum FuseReplies {
    /// Sends a read's pieces with one `writev` from where they lie (the blocks' own memory, the zero bytes): no
    /// copy into a reply buffer. The blocks stay alive until the kernel has taken the bytes.
    static func data(_ request: fuse_req_t?, _ pieces: [ReadPiece], zeros: ZeroBytes) {
        var vectors: [iovec] = []
        vectors.reserveCapacity(pieces.count + 1)
        send(request, pieces[...], vectors: &vectors, zeros: zeros)
    }

    /// Pins each block's memory in turn (recursively, so that every pointer is valid when the reply is sent).
    private static func send(_ request: fuse_req_t?, _ pieces: ArraySlice<ReadPiece>, vectors: inout [iovec],
                             zeros: ZeroBytes) {
        guard let piece = pieces.first else {
            if vectors.isEmpty {
                _ = fuse_reply_buf(request, nil, 0)  // at or past the end of the file
            } else {
                _ = vectors.withUnsafeBufferPointer { fuse_reply_iov(request, $0.baseAddress, Int32($0.count)) }
            }
            return
        }
        switch piece {
        case .zeros(var count):
            while count > 0 {
                let run = min(count, zeros.count)
                vectors.append(iovec(iov_base: zeros.memory, iov_len: run))
                count -= run
            }
            send(request, pieces.dropFirst(), vectors: &vectors, zeros: zeros)
        case .block(let block, let range):
            block.withUnsafeBytes { bytes in
                let start = UnsafeMutableRawPointer(mutating: bytes.baseAddress.map { $0 + range.lowerBound })
                vectors.append(iovec(iov_base: start, iov_len: range.count))
                send(request, pieces.dropFirst(), vectors: &vectors, zeros: zeros)
            }
        }
    }

    /// The xattr calls' convention: size 0 asks for the length; a buffer too small is ERANGE.
    static func xattr(_ request: fuse_req_t?, _ bytes: [UInt8], size: Int) {
        guard size > 0 else {
            _ = fuse_reply_xattr(request, bytes.count)
            return
        }
        guard bytes.count <= size else {
            _ = fuse_reply_err(request, ERANGE)
            return
        }
        _ = bytes.withUnsafeBytes { raw in
            fuse_reply_buf(request, raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count)
        }
    }
}
