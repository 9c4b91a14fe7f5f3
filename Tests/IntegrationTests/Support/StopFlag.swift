import Foundation

/// A flag a test's racing or sampling thread polls until the test sets it, and a count that thread keeps.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private var counted = 0

    var isSet: Bool { lock.withLock { stopped } }
    var count: Int { lock.withLock { counted } }

    func set() { lock.withLock { stopped = true } }
    func increment() { lock.withLock { counted += 1 } }
}
