import ConvoyCore

extension VolumeService {
    /// Runs one driver operation on a volume and records its duration and outcome by driver and operation.
    func timed<T: Sendable>(_ driver: any VolumeDriver, _ operation: String,
                            _ body: () async throws(ConvoyError) -> T) async throws(ConvoyError) -> T {
        let start = ContinuousClock.now
        do {
            let value = try await body()
            metrics?.driverOperation(driver: driver.name, operation: operation, duration: .now - start, failed: false)
            return value
        } catch {
            metrics?.driverOperation(driver: driver.name, operation: operation, duration: .now - start, failed: true)
            throw error
        }
    }
}
