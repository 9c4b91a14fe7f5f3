import Backupstore
import ConvoyCore
#if canImport(Glibc)
import Glibc
#endif

/// Copies the listed blocks of one device onto another at the same offsets (a clone of a thin volume: only the
/// blocks its snapshot maps; the target, a new thin volume, reads zeros elsewhere). Runs of adjacent blocks are
/// copied as one read and one write of up to `runLimit` bytes, on the blocking pool; the target is synced.
struct BlockCopy: Sendable {
    let blockSize: UInt64
    let blocks: [UInt64]
    static let runLimit: UInt64 = 4 << 20

    /// The byte ranges to copy: adjacent blocks merged, none longer than `runLimit`.
    var runs: [Range<UInt64>] {
        var runs: [Range<UInt64>] = []
        for block in blocks.sorted() {
            let (start, overflow) = block.multipliedReportingOverflow(by: blockSize)
            guard !overflow, start <= UInt64.max - blockSize else { continue }
            if let last = runs.last, last.upperBound == start, last.count + Int(blockSize) <= Int(Self.runLimit) {
                runs[runs.count - 1] = last.lowerBound..<start + blockSize
            } else {
                runs.append(start..<start + blockSize)
            }
        }
        return runs
    }

    func copy(from source: String, to target: String, progress: @escaping ProgressSink) async throws(ConvoyError) {
        let runs = self.runs
        let total = runs.reduce(UInt64(0)) { $0 + UInt64($1.count) }
        let report = WorkProgress(phase: "copying blocks", bytesTotal: total, itemsTotal: runs.count)
        try await BlockingIOPool.shared.run { [report] () throws(ConvoyError) in
            var report = report
            let input = open(source, O_RDONLY | O_CLOEXEC)
            guard input >= 0 else { throw PosixFile.failure("open", source) }
            defer { close(input) }
            let output = open(target, O_WRONLY | O_CLOEXEC)
            guard output >= 0 else { throw PosixFile.failure("open", target) }
            defer { close(output) }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(Self.runLimit), alignment: 4096)
            defer { buffer.deallocate() }
            for run in runs {
                let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<run.count])
                let read = try PosixFile.read(input, into: slice, at: run.lowerBound, path: source)
                guard read == run.count else {
                    throw ConvoyError(.driverFailure, "\(source) ended at \(run.lowerBound + UInt64(read)) bytes, "
                        + "before block \(run.lowerBound / blockSize)")
                }
                try PosixFile.writeAll(output, UnsafeRawBufferPointer(slice), at: run.lowerBound, path: target)
                report.bytesDone += UInt64(run.count)
                report.itemsDone += 1
                progress(report)
            }
            guard fsync(output) == 0 else { throw PosixFile.failure("sync", target) }
        }
    }
}
