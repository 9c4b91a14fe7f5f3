import Backupstore
import ConvoyCore
import Logging
@testable import Plugin
import Synchronization
import XCTest

/// Clients follow jobs by waiting in the daemon (`waitForEnd`): a job's end must be seen at once, a long job must
/// come back running after the wait with its progress, and a wait that times out must not leave anything behind.
final class JobManagerTests: XCTestCase {
    private func manager() throws -> JobManager {
        let directory = NSTemporaryDirectory() + "convoy-jobs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        return JobManager(store: try StateStore(path: directory + "/convoy.db"), logger: Logger(label: "test"))
    }

    func testAWaitEndsWhenTheJobEndsNotWhenItTimesOut() async throws {
        let jobs = try manager()
        let job = try await jobs.start(kind: "test", target: "quick") { _ throws(ConvoyError) in
            try? await Task.sleep(for: .milliseconds(300))
            return ["done": "yes"]
        }
        let clock = ContinuousClock()
        let start = clock.now
        let ended = await jobs.waitForEnd(job.id, upTo: .seconds(8))
        let waited = clock.now - start
        XCTAssertEqual(ended?.state, .succeeded)
        XCTAssertEqual(ended?.result, ["done": "yes"])
        XCTAssertLessThan(waited, .seconds(4), "the end was seen only after \(waited)")
        // An ended job answers at once.
        let again = clock.now
        let state = await jobs.waitForEnd(job.id, upTo: .seconds(8))?.state
        XCTAssertEqual(state, .succeeded)
        XCTAssertLessThan(clock.now - again, .seconds(1))
    }

    func testAWaitOnALongJobReturnsItRunningWithItsProgressThenSeesItsEnd() async throws {
        let jobs = try manager()
        let release = Flag()
        let job = try await jobs.start(kind: "test", target: "long") { progress throws(ConvoyError) in
            progress(WorkProgress(phase: "working", bytesDone: 5, bytesTotal: 10))
            while !release.isSet { try? await Task.sleep(for: .milliseconds(20)) }
            return [:]
        }
        let clock = ContinuousClock()
        for _ in 0..<3 {  // several timed-out waits in a row, none of them left registered
            let start = clock.now
            let current = await jobs.waitForEnd(job.id, upTo: .milliseconds(200))
            XCTAssertGreaterThanOrEqual(clock.now - start, .milliseconds(190))
            XCTAssertEqual(current?.state, .running)
        }
        let running = await jobs.job(job.id)
        XCTAssertEqual(running?.bytesDone, 5)
        release.set()
        let ended = await jobs.waitForEnd(job.id, upTo: .seconds(8))
        XCTAssertEqual(ended?.state, .succeeded)
        let unknown = await jobs.waitForEnd("job-0000000000000000", upTo: .milliseconds(50))
        XCTAssertNil(unknown, "an unknown job")
    }

    /// The job table does not grow forever: the newest ended jobs are kept, running ones always.
    func testOnlyTheNewestEndedJobsAreKept() async throws {
        let directory = NSTemporaryDirectory() + "convoy-jobs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        let jobs = JobManager(store: try StateStore(path: directory + "/convoy.db"), logger: Logger(label: "test"),
                              keptJobs: 3)
        let gate = Gate()
        let running = try await jobs.start(kind: "test", target: "long") { _ throws(ConvoyError) in
            await gate.wait()
            return [:]
        }
        var ended: [String] = []
        for index in 0..<6 {
            let job = try await jobs.start(kind: "test", target: "quick \(index)") { _ throws(ConvoyError) in [:] }
            let finished = await jobs.waitForEnd(job.id, upTo: .seconds(10))
            XCTAssertEqual(finished?.state, .succeeded)
            ended.append(job.id)
        }
        let kept = Set(await jobs.jobs().map(\.id))
        XCTAssertEqual(kept, Set(ended.suffix(3) + [running.id]))
        await gate.open()
        _ = await jobs.waitForEnd(running.id, upTo: .seconds(10))
    }
}

private final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

/// Holds a job until the test lets it end.
private actor Gate {
    private var opened = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func wait() async {
        if opened { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func open() {
        opened = true
        for waiter in waiters { waiter.resume() }
        waiters = []
    }
}
