import Dispatch
import Synchronization

/// A value produced once (by an async task, or a thread that ends) and awaited by blocking threads: libfuse's
/// threads are not Swift's cooperative threads, so they may block; cooperative threads must never call `wait`.
final class Delivery<Value: Sendable>: Sendable {
    private let state = Mutex<(value: Value?, waiters: [DispatchSemaphore])>((nil, []))

    var value: Value? { state.withLock { $0.value } }

    /// Sets the value (the first delivery wins) and wakes every waiter.
    func deliver(_ value: Value) {
        let waiters = state.withLock { state -> [DispatchSemaphore] in
            guard state.value == nil else { return [] }
            state.value = value
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.signal() }
    }

    /// Blocks the calling thread until the value is delivered; nil when `timeout` passes first.
    func wait(timeout: DispatchTime = .distantFuture) -> Value? {
        let semaphore = DispatchSemaphore(value: 0)
        let ready = state.withLock { state -> Value? in
            if state.value == nil { state.waiters.append(semaphore) }
            return state.value
        }
        if let ready { return ready }
        guard semaphore.wait(timeout: timeout) == .success else { return nil }
        return value
    }
}
