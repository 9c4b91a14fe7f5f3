import ConvoyCore
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Thin device ids, handed out once and never again (a reused id could meet stale metadata in a backup's base or a
/// half-deleted device). The next id lives in a file under the driver's directory, written atomically and synced
/// before the id is used.
final class DeviceIDs: Sendable {
    let path: String
    /// Volumes are created and snapshotted concurrently (the daemon serializes per volume only).
    private let lock = Mutex<Void>(())

    init(path: String) {
        self.path = path
    }

    /// dm-thin ids are 24-bit.
    static let maximum: UInt32 = (1 << 24) - 1

    func next() throws(ConvoyError) -> UInt32 {
        let result: Result<UInt32, ConvoyError> = lock.withLock { _ in
            do throws(ConvoyError) { return .success(try allocate()) } catch { return .failure(error) }
        }
        return try result.get()
    }

    private func allocate() throws(ConvoyError) -> UInt32 {
        let current = (try? String(contentsOfFile: path, encoding: .utf8))
            .flatMap { UInt32($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 1
        guard current < Self.maximum else {
            throw ConvoyError(.driverFailure,
                              "the thin pool's device ids are exhausted (\(Self.maximum)); create a new pool")
        }
        try write(current + 1)
        return current
    }

    private func write(_ value: UInt32) throws(ConvoyError) {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ConvoyError(.driverFailure, "cannot write \(temporary): \(Filesystem.errnoText())") }
        let bytes = Array("\(value)\n".utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0, rename(temporary, path) == 0 else {
            throw ConvoyError(.driverFailure, "cannot record the next device id in \(path): \(Filesystem.errnoText())")
        }
    }
}
