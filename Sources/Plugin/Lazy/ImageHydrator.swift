import BackupFS
import Backupstore
import CLinux
import ConvoyCore

/// Hydrates a lazily restored block volume: every block of the backup's image is fetched, verified and kept in
/// the volume's disk cache, after which the store is no longer needed. The volume itself is not written (the
/// filesystem on it may be writing the same blocks); the blocks it never wrote are copied in when nothing uses it.
///
/// The work runs on low-priority threads of its own: the volume's readers (whose reads of unwritten blocks go
/// through the same mount) come first, so a freshly restored volume answers at once even while hydration has
/// the CPU to itself otherwise.
struct ImageHydrator: Sendable {
    let manifest: Manifest
    let mount: BackupMount
    /// Wait before each block (tests throttle hydration with it).
    let pause: Duration
    let stop: StopFlag
    static let width = 2
    /// Shared by every block volume's hydration; nice 19, the lowest priority.
    static let threads = BlockingIOPool(threads: width, name: "convoy-hydrate") { _ = convoy_set_thread_niceness(19) }

    /// The byte ranges of the image that hold data: hydration fetches them, and they are what the volume must hold.
    static func regions(of manifest: Manifest) -> [Range<UInt64>] {
        chunks(of: manifest).map { $0.offset..<($0.offset + UInt64($0.length)) }
    }

    private static func chunks(of manifest: Manifest) -> [Chunk] {
        manifest.entries.first { $0.path == Manifest.imagePath }?.chunks ?? []
    }

    func run(progress: HydrationProgress) async throws(ConvoyError) {
        // One fetch per distinct block; progress counts every range it fills.
        var bytes: [String: UInt64] = [:]
        var order: [Chunk] = []
        for chunk in Self.chunks(of: manifest) {
            if bytes[chunk.hash] == nil { order.append(chunk) }
            bytes[chunk.hash, default: 0] += UInt64(chunk.length)
        }
        let (mount, counts) = (self.mount, bytes)
        let result: Result<Void, ConvoyError> = await withTaskExecutorPreference(Self.threads) {
            do throws(ConvoyError) {
                try await forEachBounded(order, width: Self.width, pause: pause,
                                         stop: stop) { chunk throws(ConvoyError) in
                    try await mount.keepOnDisk(chunk.hash, checksum: chunk.checksum)
                    progress.add(bytes: counts[chunk.hash] ?? 0, files: 0)
                }
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
        progress.add(bytes: 0, files: 1)
    }
}
