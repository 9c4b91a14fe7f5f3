#if canImport(Glibc)
import Glibc
#endif

/// Memory aligned for O_DIRECT, owned by one user at a time (a pack being filled under a lock, then the task
/// writing it), and reused: touching fresh memory for every pack cost page faults.
public final class AlignedBuffer: @unchecked Sendable {
    static let alignment = UncachedRead.alignment
    let memory: UnsafeMutableRawPointer
    let capacity: Int
    var count = 0

    /// nil when the memory cannot be had.
    init?(capacity: Int) {
        let rounded = (capacity + Self.alignment - 1) / Self.alignment * Self.alignment
        var allocated: UnsafeMutableRawPointer?
        guard posix_memalign(&allocated, Self.alignment, rounded) == 0, let allocated else { return nil }
        memory = allocated
        self.capacity = rounded
    }

    deinit { free(memory) }

    /// False, and nothing appended, when the bytes do not fit.
    @discardableResult
    func append(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count <= capacity - count else { return false }
        if let base = bytes.baseAddress { (memory + count).copyMemory(from: base, byteCount: bytes.count) }
        count += bytes.count
        return true
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: memory, count: count) }
}
