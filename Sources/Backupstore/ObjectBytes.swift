import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An object's bytes read for one use: either an array or memory this value allocated (aligned, for O_DIRECT)
/// and frees. Immutable once made, so it may cross threads.
public final class ObjectBytes: @unchecked Sendable {
    private let memory: UnsafeMutableRawPointer?
    /// Where the object starts in `memory`: a range read with O_DIRECT reads from an aligned offset before it.
    private let start: Int
    private let array: [UInt8]
    /// What a decryption returned, kept as it is rather than copied into an array (a block opened for a restore).
    private let data: Data?
    public let count: Int

    public init(_ array: [UInt8]) {
        self.array = array
        memory = nil
        start = 0
        count = array.count
        data = nil
    }

    init(_ data: Data) {
        self.data = data
        array = []
        memory = nil
        start = 0
        count = data.count
    }

    /// Takes ownership of `memory` (from malloc or posix_memalign), of which `count` bytes from `start` are the object.
    init(adopting memory: UnsafeMutableRawPointer, start: Int = 0, count: Int) {
        self.memory = memory
        self.start = start
        self.count = count
        array = []
        data = nil
    }

    deinit { free(memory) }

    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        if let memory {
            // Keeps this object (which frees `memory`) alive until `body` is done with the pointer: Swift may
            // otherwise release it right after its last use, the load of `memory`.
            defer { withExtendedLifetime(self) {} }
            return try body(UnsafeRawBufferPointer(start: memory + start, count: count))
        }
        if let data {
            let result: Result<R, E> = data.withUnsafeBytes { raw in
                do throws(E) { return .success(try body(raw)) } catch { return .failure(error) }
            }
            return try result.get()
        }
        let result: Result<R, E> = array.withUnsafeBytes { raw in
            do throws(E) { return .success(try body(raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}
