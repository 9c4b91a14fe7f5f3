import ConvoyCore
import Synchronization
import XCTest

/// `AsyncLimit` lets at most its permits' worth of callers in at once and lets every caller in eventually.
final class AsyncLimitTests: XCTestCase {
    private final class Inside: Sendable {
        let counts = Mutex((now: 0, most: 0, done: 0))
    }

    func testNoMoreThanThePermitsRunAtOnceAndAllRun() async throws {
        let limit = AsyncLimit(permits: 3)
        let inside = Inside()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    await limit.run {
                        inside.counts.withLock {
                            $0.now += 1
                            $0.most = max($0.most, $0.now)
                        }
                        try? await Task.sleep(for: .milliseconds(2))
                        inside.counts.withLock {
                            $0.now -= 1
                            $0.done += 1
                        }
                    }
                }
            }
        }
        let seen = inside.counts.withLock { $0 }
        XCTAssertEqual(seen.done, 40)
        XCTAssertEqual(seen.now, 0)
        XCTAssertLessThanOrEqual(seen.most, 3)
        XCTAssertGreaterThan(seen.most, 1, "callers were let in one at a time")
    }

    func testAnErrorThrownInsideGivesThePermitBack() async throws {
        struct Refused: Error {}
        let limit = AsyncLimit(permits: 1)
        for _ in 0..<3 {
            do {
                try await limit.run { () async throws(Refused) in throw Refused() }
                XCTFail("the error was lost")
            } catch {}
        }
        let value = await limit.run { 7 }
        XCTAssertEqual(value, 7, "the permit came back after each error")
    }
}
