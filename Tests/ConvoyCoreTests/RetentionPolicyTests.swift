import ConvoyCore
import Foundation
import XCTest

/// Retention by restic's `forget` rules, case by case, on backups with made-up times (UTC).
final class RetentionPolicyTests: XCTestCase {
    private func date(_ text: String) -> Date {
        let formatter = ISO8601DateFormatter()
        guard let date = formatter.date(from: text) else { preconditionFailure("bad date \(text)") }
        return date
    }

    /// The ids kept, newest first, with their reasons.
    private func kept(_ policy: RetentionPolicy, _ times: [String]) -> [String: [String]] {
        let decisions = policy.apply(to: times.map { (id: $0, time: date($0)) })
        XCTAssertEqual(decisions.map(\.time), decisions.map(\.time).sorted(by: >), "not newest first")
        XCTAssertEqual(decisions.count, times.count)
        return Dictionary(uniqueKeysWithValues: decisions.filter(\.keep).map { ($0.id, $0.reasons) })
    }

    func testKeepLastKeepsTheNewest() {
        let times = (1...10).map { String(format: "2026-03-%02dT08:00:00Z", $0) }
        XCTAssertEqual(kept(RetentionPolicy(last: 3), times),
                       ["2026-03-10T08:00:00Z": ["last"], "2026-03-09T08:00:00Z": ["last"],
                        "2026-03-08T08:00:00Z": ["last"]])
        XCTAssertEqual(kept(RetentionPolicy(last: -1), times).count, 10, "-1 keeps every backup")
    }

    /// Hours without a backup do not count: the two most recent hours that have one are 13 and 11.
    func testKeepHourlyTakesTheNewestOfEachHourThatHasOne() {
        let times = ["2026-03-01T10:05:00Z", "2026-03-01T10:40:00Z", "2026-03-01T11:10:00Z",
                     "2026-03-01T11:50:00Z", "2026-03-01T13:00:00Z"]
        XCTAssertEqual(kept(RetentionPolicy(hourly: 2), times),
                       ["2026-03-01T13:00:00Z": ["hourly"], "2026-03-01T11:50:00Z": ["hourly"]])
    }

    func testKeepDailyOverAMonthOfTwoBackupsADay() {
        let times = (1...30).flatMap { day in
            ["06", "18"].map { String(format: "2026-04-%02dT\($0):00:00Z", day) }
        }
        XCTAssertEqual(kept(RetentionPolicy(daily: 3), times),
                       ["2026-04-30T18:00:00Z": ["daily"], "2026-04-29T18:00:00Z": ["daily"],
                        "2026-04-28T18:00:00Z": ["daily"]])
    }

    /// ISO weeks start on Monday: Sunday 6 December 2026 is in week 49 with Monday 30 November.
    func testKeepWeeklyFollowsISOWeeks() {
        let times = ["2026-11-30T09:00:00Z", "2026-12-05T10:00:00Z", "2026-12-06T23:00:00Z",
                     "2026-12-07T09:00:00Z"]
        XCTAssertEqual(kept(RetentionPolicy(weekly: 2), times),
                       ["2026-12-07T09:00:00Z": ["weekly"], "2026-12-06T23:00:00Z": ["weekly"]])
        // The ISO year differs from the calendar year around New Year: 31 December 2024 is in 2025's week 1.
        let newYear = ["2024-12-30T09:00:00Z", "2024-12-31T09:00:00Z", "2025-01-01T09:00:00Z"]
        XCTAssertEqual(kept(RetentionPolicy(weekly: 5), newYear), ["2025-01-01T09:00:00Z": ["weekly"]])
    }

    /// Two rules at once: a backup kept by both names both.
    func testMonthlyAndUnlimitedYearly() {
        let times = [2025, 2026].flatMap { year in
            (1...12).map { String(format: "\(year)-%02d-01T00:00:00Z", $0) }
        }
        XCTAssertEqual(kept(RetentionPolicy(monthly: 2, yearly: -1), times),
                       ["2026-12-01T00:00:00Z": ["monthly", "yearly"], "2026-11-01T00:00:00Z": ["monthly"],
                        "2025-12-01T00:00:00Z": ["yearly"]])
    }

    /// Within is measured from the newest backup, not from now: old backups that stopped are still kept.
    func testKeepWithinCountsFromTheNewestBackup() {
        let start = date("2020-01-01T00:00:00Z")
        let times = (0..<10).map { ISO8601DateFormatter().string(from: start.addingTimeInterval(Double($0) * 43_200)) }
        let result = kept(RetentionPolicy(within: 2 * 86_400), times)
        XCTAssertEqual(result.count, 5, "backups 0, 12, 24, 36 and 48 hours before the newest: \(result)")
        XCTAssertEqual(Set(result.values.flatMap { $0 }), ["within"])
        XCTAssertNotNil(result["2020-01-03T12:00:00Z"], "a backup exactly 48 hours before the newest is within")
    }

    func testPoliciesThatWouldForgetEverythingOrMakeNoSenseAreRefused() {
        XCTAssertThrowsError(try RetentionPolicy().validate())
        XCTAssertThrowsError(try RetentionPolicy(daily: 0).validate())
        XCTAssertThrowsError(try RetentionPolicy(last: -2).validate())
        XCTAssertThrowsError(try RetentionPolicy(within: -5).validate())
        XCTAssertNoThrow(try RetentionPolicy(weekly: -1).validate())
        XCTAssertEqual(RetentionPolicy(last: 1).apply(to: []), [])
    }

    func testDurations() throws {
        XCTAssertEqual(try DurationText.seconds("90s", option: "x"), 90)
        XCTAssertEqual(try DurationText.seconds("1d12h", option: "x"), 129_600)
        XCTAssertEqual(try DurationText.seconds("2w", option: "x"), 1_209_600)
        XCTAssertEqual(try DurationText.seconds("1y", option: "x"), 31_536_000)
        for bad in ["", "7", "d", "7x", "1.5h", "h7", "-1d"] {
            XCTAssertThrowsError(try DurationText.seconds(bad, option: "x"), bad)
        }
    }
}
