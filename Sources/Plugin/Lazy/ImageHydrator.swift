import Backupstore
import ConvoyCore
#if canImport(Glibc)
import Glibc
#endif

/// Hydrates a lazily restored block volume: reads every mapped range of the backup's image through its FUSE
/// mount, which verifies each block and keeps it in the volume's disk cache. The volume itself is not written
/// (the filesystem on it may be writing the same blocks); once the cache holds the whole image, the store is no
/// longer needed, and the blocks the volume never wrote are copied in when nothing uses it.
struct ImageHydrator: Sendable {
    let manifest: Manifest
    /// The image in the backup's FUSE mount.
    let image: String
    /// Wait before each block (tests throttle hydration with it).
    let pause: Duration
    let stop: StopFlag
    /// Runs the reads, which block until FUSE has fetched the block: not the store's I/O pool, which serves them.
    let threads: BlockingIOPool
    static let width = 4

    /// The byte ranges of the image that hold data: hydration reads them, and they are what the volume must hold.
    static func regions(of manifest: Manifest) -> [Range<UInt64>] {
        let chunks = manifest.entries.first { $0.path == Manifest.imageName }?.chunks ?? []
        return chunks.map { $0.offset..<($0.offset + UInt64($0.length)) }
    }

    func run(progress: HydrationProgress) async throws(ConvoyError) {
        let fd = open(image, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw PosixFile.failure("open", image) }
        defer { close(fd) }
        try await forEachBounded(Self.regions(of: manifest), width: Self.width, pause: pause, stop: stop) {
            [image, threads] region throws(ConvoyError) in
            try await threads.run { () throws(ConvoyError) in
                var buffer = [UInt8](repeating: 0, count: region.count)
                let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, region.count, off_t(region.lowerBound)) }
                guard got == region.count else {
                    throw ConvoyError(.driverFailure, "cannot read bytes \(region.lowerBound)..<\(region.upperBound) of \(image): \(got < 0 ? String(cString: strerror(errno)) : "short read")")
                }
            }
            progress.add(bytes: UInt64(region.count), files: 0)
        }
        progress.add(bytes: 0, files: 1)
    }
}
