/// Serializes operations on one volume name while letting different volumes proceed concurrently. Used from
/// within the VolumeService actor, whose methods suspend across driver calls (actor reentrancy would otherwise
/// interleave a Mount with a Remove of the same volume).
struct VolumeLocks {
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    /// Returns true when the caller holds the lock at once; otherwise the caller must wait via `enqueue`.
    mutating func tryAcquire(_ name: String) -> Bool {
        if waiters[name] == nil {
            waiters[name] = []
            return true
        }
        return false
    }

    mutating func enqueue(_ name: String, _ continuation: CheckedContinuation<Void, Never>) {
        waiters[name, default: []].append(continuation)
    }

    /// Hands the lock to the next waiter, or frees it.
    mutating func release(_ name: String) {
        guard var queue = waiters[name] else { return }
        if queue.isEmpty {
            waiters[name] = nil
        } else {
            let next = queue.removeFirst()
            waiters[name] = queue
            next.resume()
        }
    }
}
