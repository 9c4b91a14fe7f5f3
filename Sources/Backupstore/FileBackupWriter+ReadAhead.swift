import ConvoyCore
#if canImport(Glibc)
import Glibc
#endif

extension FileBackupWriter {
    /// Bytes one read of a large file asks for, and how many such reads fit the buffer between compactions: a
    /// compaction moves less than one largest chunk (≤ 4 MiB, well under a millisecond), so three reads of room
    /// (a 16 MiB buffer) cost nothing measurable over seven (32 MiB, a sixth of an S3 backup's peak memory).
    static let directReadSize = 4 << 20
    static let directReadsPerCompaction = 3

    /// `forEachChunk` for a file read around the page cache: with no kernel read-ahead, the next read runs on the
    /// I/O pool while the bytes already read are chunked. The buffer holds several reads, so the unchunked tail
    /// is moved back to the front (to an aligned place, where the next direct read lands) only once per
    /// `directReadsPerCompaction` reads, and never while a read is in flight.
    func forEachChunkReadingAhead(_ file: SourceFile, size: UInt64, chunker: FastCDC, parent: inout ParentChunks?,
                                  _ body: (UInt64, ChunkRead) async throws(ConvoyError) -> Void)
        async throws(ConvoyError) {
        let alignment = SourceFile.alignment
        let segment = Self.directReadSize
        let room = chunker.maximum + Self.directReadsPerCompaction * segment + 2 * alignment
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: room, alignment: alignment)
        defer { buffer.deallocate() }
        guard let base = buffer.baseAddress else { return }
        let shared = SharedBuffer(base: base)
        for (regionStart, regionLength) in PosixFile.dataRegions(file.fd, size: size) {
            var start = 0
            var filled = 0
            var bufferOffset = regionStart  // file offset of buffer[start]
            var readOffset = regionStart
            let regionEnd = regionStart + regionLength
            var pending: (task: Task<Result<Int, ConvoyError>, Never>, want: Int)?
            while true {
                if pending == nil && readOffset < regionEnd {
                    if room - filled < segment + alignment {
                        let left = filled - start
                        let pad = (alignment - left % alignment) % alignment
                        _ = memmove(base + pad, base + start, left)
                        start = pad
                        filled = pad + left
                    }
                    let want = Int(min(UInt64(segment), regionEnd - readOffset))
                    let (destination, offset) = (filled, readOffset)
                    let task = Task(executorPreference: BlockingIOPool.shared) { () -> Result<Int, ConvoyError> in
                        var reader = file
                        do throws(ConvoyError) {
                            return .success(try reader.read(into: shared.base + destination, count: want, at: offset))
                        } catch {
                            return .failure(error)
                        }
                    }
                    pending = (task, want)
                }
                // Keep the parent's chunks the buffer holds whole; cut while a whole maximum-size chunk is
                // available, or the rest once nothing more will come.
                while filled > start {
                    let available = UnsafeRawBufferPointer(rebasing: buffer[start..<filled])
                    let atDataEnd = pending == nil && readOffset >= regionEnd
                    let kept = parent?.unchanged(at: bufferOffset, available, atDataEnd: atDataEnd)
                    guard kept != nil || available.count >= chunker.maximum || atDataEnd else { break }
                    let length = kept?.length ?? chunker.cut(available)
                    do throws(ConvoyError) {
                        try await body(bufferOffset, kept?.read
                                       ?? .bytes(Array(UnsafeRawBufferPointer(rebasing: available[0..<length]))))
                    } catch {
                        // The read in flight writes into the buffer: wait for it before the buffer goes.
                        if let pending { _ = await pending.task.value }
                        throw error
                    }
                    start += length
                    bufferOffset += UInt64(length)
                }
                guard let read = pending else {
                    if readOffset >= regionEnd { break }
                    continue
                }
                pending = nil
                let got = try await read.task.value.get()
                filled += got
                readOffset += UInt64(got)
                if got < read.want { readOffset = regionEnd }  // the file shrank while being read
            }
        }
    }
}

/// The chunking buffer's address for the read running on the I/O pool; the loop above never touches the range
/// that read writes until it has awaited it.
private struct SharedBuffer: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
}
