import ConvoyCore
import Foundation
import XCTest

/// When a backup policy runs: slots from its anchor, one catch-up run after downtime, retries after a failure.
final class BackupScheduleTests: XCTestCase {
    private func date(_ text: String) -> Date {
        guard let date = ISO8601DateFormatter().date(from: text) else { preconditionFailure("bad date \(text)") }
        return date
    }

    func testWithoutAtTheSlotsCountFromWhenThePolicyWasSet() throws {
        let set = date("2026-03-01T10:17:00Z")
        let schedule = try BackupSchedule(every: 6 * 3600, at: nil, createdAt: set)
        XCTAssertEqual(schedule.slot(after: set), date("2026-03-01T16:17:00Z"))
        XCTAssertEqual(schedule.slot(after: date("2026-03-01T16:17:00Z")), date("2026-03-01T22:17:00Z"),
                       "a run exactly on a slot waits for the next one")
        let first = schedule.next(lastSuccess: nil, lastAttempt: nil, createdAt: set, now: date("2026-03-01T16:00:00Z"))
        XCTAssertEqual(first.at, date("2026-03-01T16:17:00Z"))
        XCTAssertFalse(first.due)
    }

    func testAtMakesTheRunsFallOnThatTimeOfDayUTC() throws {
        let set = date("2026-03-01T10:17:00Z")
        let daily = try BackupSchedule(every: 86_400, at: "02:30", createdAt: set)
        XCTAssertEqual(daily.slot(after: set), date("2026-03-02T02:30:00Z"), "02:30 today has passed")
        let evening = try BackupSchedule(every: 86_400, at: "23:00", createdAt: set)
        XCTAssertEqual(evening.slot(after: set), date("2026-03-01T23:00:00Z"), "23:00 today is still to come")
        let hourly = try BackupSchedule(every: 3600, at: "00:45", createdAt: set)
        XCTAssertEqual(hourly.slot(after: set), date("2026-03-01T10:45:00Z"), "every hour at :45")
    }

    func testAfterDowntimeItRunsOnceNotOncePerMissedSlot() throws {
        let set = date("2026-03-01T00:00:00Z")
        let schedule = try BackupSchedule(every: 86_400, at: "01:00", createdAt: set)
        let success = date("2026-03-02T01:00:05Z")
        let back = date("2026-03-07T09:00:00Z")  // five slots missed
        let now = schedule.next(lastSuccess: success, lastAttempt: success, createdAt: set, now: back)
        XCTAssertTrue(now.due)
        XCTAssertEqual(now.at, date("2026-03-03T01:00:00Z"))
        let afterCatchUp = schedule.next(lastSuccess: back, lastAttempt: back, createdAt: set, now: back)
        XCTAssertFalse(afterCatchUp.due, "one catch-up run, then the next slot")
        XCTAssertEqual(afterCatchUp.at, date("2026-03-08T01:00:00Z"))
    }

    func testAFailedRunIsTriedAgainAfterTheRetryDelay() throws {
        let set = date("2026-03-01T00:00:00Z")
        let schedule = try BackupSchedule(every: 86_400, at: nil, createdAt: set)
        let failed = date("2026-03-02T00:00:01Z")
        let soon = schedule.next(lastSuccess: nil, lastAttempt: failed, createdAt: set,
                                 now: failed.addingTimeInterval(60))
        XCTAssertFalse(soon.due)
        XCTAssertEqual(soon.at, failed.addingTimeInterval(BackupSchedule.retryDelay))
        let later = schedule.next(lastSuccess: nil, lastAttempt: failed, createdAt: set,
                                  now: failed.addingTimeInterval(BackupSchedule.retryDelay))
        XCTAssertTrue(later.due)
        let short = try BackupSchedule(every: 120, at: nil, createdAt: set)
        XCTAssertEqual(short.next(lastSuccess: nil, lastAttempt: failed, createdAt: set, now: failed).at,
                       failed.addingTimeInterval(120), "an interval shorter than the delay retries sooner")
    }

    func testBadSchedulesAreRefused() {
        let set = Date()
        XCTAssertThrowsError(try BackupSchedule(every: 30, at: nil, createdAt: set))
        for bad in ["24:00", "2:30", "02:60", "0230", "02:30:00", "ab:cd", ""] {
            XCTAssertThrowsError(try BackupSchedule(every: 3600, at: bad, createdAt: set), bad)
        }
    }
}
