import ConvoyCore

/// Polling for EC2's eventual states (a volume available, attached, a snapshot completed): the probe again and
/// again, backing off from 100 ms to 2 s, until it answers or the time is up. No fixed sleeps: moto answers at
/// once, EC2 in seconds to minutes.
enum EBSWait {
    static func until<T>(_ what: String, timeout: Duration,
                         probe: () async throws(ConvoyError) -> T?) async throws(ConvoyError) -> T {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var delay = Duration.milliseconds(100)
        while true {
            if let value = try await probe() { return value }
            guard clock.now < deadline else {
                throw ConvoyError(.driverFailure, "\(what) did not happen within \(timeout)")
            }
            do {
                try await Task.sleep(for: min(delay, deadline - clock.now))
            } catch {
                throw ConvoyError(.driverFailure, "cancelled while waiting until \(what)")
            }
            delay = min(delay * 2, .seconds(2))
        }
    }
}
