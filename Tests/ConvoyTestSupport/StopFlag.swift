import Foundation

/// A flag a test's racing or sampling thread polls until the test sets it, and a count that thread keeps.
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private var counted = 0

    public init() {}

    public var isSet: Bool { lock.withLock { stopped } }
    public var count: Int { lock.withLock { counted } }

    public func set() { lock.withLock { stopped = true } }
    public func increment() { lock.withLock { counted += 1 } }
}

extension StopFlag {
    /// An application that keeps moving a directory: renames `path` to `path` + `suffix` and back, pausing
    /// `pause` microseconds after each, on a thread of its own, until the returned flag is set.
    public static func renaming(_ path: String, to suffix: String, pause: UInt32) -> StopFlag {
        let stop = StopFlag()
        Thread {
            while !stop.isSet {
                _ = rename(path, path + suffix)
                usleep(pause)
                _ = rename(path + suffix, path)
                usleep(pause)
            }
        }.start()
        return stop
    }
}
