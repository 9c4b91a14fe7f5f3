import Synchronization

/// Bytes a pipeline's workers may hold at once, shared among them without waiting: a worker takes bytes before it
/// starts work that will hold them and gives them back when that memory is gone. `take` never blocks; a worker
/// holding nothing may always take (`evenOver`), so each can make progress while the total stays within the
/// allowance plus one piece per worker. Workers that wait on each other could deadlock on a blocking budget.
public final class ByteAllowance: Sendable {
    public let limit: Int
    private let state: Mutex<(held: Int, peak: Int)>

    public init(limit: Int) {
        self.limit = max(0, limit)
        state = Mutex((0, 0))
    }

    /// Takes `bytes` if they fit under the limit, or regardless when `evenOver`; whether they were taken.
    public func take(_ bytes: Int, evenOver: Bool = false) -> Bool {
        state.withLock { state in
            guard evenOver || state.held + bytes <= limit else { return false }
            state.held += bytes
            state.peak = max(state.peak, state.held)
            return true
        }
    }

    public func give(_ bytes: Int) {
        state.withLock { $0.held -= bytes }
    }

    /// Bytes taken and not given back, and the most ever taken at once.
    public var taken: Int { state.withLock { $0.held } }
    public var peak: Int { state.withLock { $0.peak } }
}
