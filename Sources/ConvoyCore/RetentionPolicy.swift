import Foundation

/// Which backups of one volume a retention policy keeps: restic's `forget` rules, so a user of restic reads them
/// the same way. Backups are taken newest first; each rule keeps the newest backup of each of its periods until
/// it has kept its count, and a backup is kept when any rule keeps it (its reasons name them all):
///
/// - `last N`: the N newest backups.
/// - `hourly / daily / weekly / monthly / yearly N`: for the N most recent hours (days, ISO weeks, months,
///   years) that hold a backup, the newest backup of each. Periods without a backup do not count.
/// - `within D`: every backup taken within D before the newest backup (not before now: a volume whose backups
///   stopped keeps them).
///
/// A count of -1 means no limit. Periods are in UTC (restic uses the local zone; a daemon's zone is an accident
/// of its host). A policy with no rule keeps everything and is refused by `forget`.
public struct RetentionPolicy: Codable, Sendable, Equatable {
    public var last: Int?
    public var hourly: Int?
    public var daily: Int?
    public var weekly: Int?
    public var monthly: Int?
    public var yearly: Int?
    /// Seconds.
    public var within: Double?

    public init(last: Int? = nil, hourly: Int? = nil, daily: Int? = nil, weekly: Int? = nil, monthly: Int? = nil,
                yearly: Int? = nil, within: Double? = nil) {
        (self.last, self.hourly, self.daily, self.weekly, self.monthly, self.yearly, self.within) =
            (last, hourly, daily, weekly, monthly, yearly, within)
    }

    enum CodingKeys: String, CodingKey {
        case last = "KeepLast", hourly = "KeepHourly", daily = "KeepDaily", weekly = "KeepWeekly"
        case monthly = "KeepMonthly", yearly = "KeepYearly", within = "KeepWithinSeconds"
    }

    public var isEmpty: Bool {
        [last, hourly, daily, weekly, monthly, yearly].allSatisfy { $0 == nil || $0 == 0 } && (within ?? 0) <= 0
    }

    /// Refuses counts below -1 and negative durations.
    public func validate() throws(ConvoyError) {
        for (name, count) in [("last", last), ("hourly", hourly), ("daily", daily), ("weekly", weekly),
                              ("monthly", monthly), ("yearly", yearly)] {
            if let count, count < -1 {
                throw .invalid("keep-\(name): \(count) is not a count (a number of backups, or -1 for all)")
            }
        }
        if let within, within < 0 || !within.isFinite {
            throw .invalid("keep-within: \(within) seconds is not a duration")
        }
        if isEmpty {
            throw .invalid("a policy with no --keep-* rule would forget every backup; give at least one")
        }
    }

    public struct Decision: Codable, Sendable, Equatable {
        public var id: String
        public var time: Date
        public var keep: Bool
        /// The rules that keep it ("last", "daily", "within", ...); empty for a backup forgotten.
        public var reasons: [String]

        enum CodingKeys: String, CodingKey {
            case id = "ID", time = "Time", keep = "Keep", reasons = "Reasons"
        }
    }

    /// The decision for each of one volume's backups, newest first (ties broken by id, for the same answer
    /// each time).
    public func apply(to backups: [(id: String, time: Date)]) -> [Decision] {
        let ordered = backups.sorted { ($0.time, $0.id) > ($1.time, $1.id) }
        guard let newest = ordered.first?.time else { return [] }
        let calendar = {
            var calendar = Calendar(identifier: .iso8601)
            calendar.timeZone = TimeZone(identifier: "UTC") ?? .current
            return calendar
        }()
        func period(_ date: Date, _ components: Set<Calendar.Component>) -> [Int] {
            let parts = calendar.dateComponents(components, from: date)
            return [parts.yearForWeekOfYear, parts.weekOfYear, parts.year, parts.month, parts.day, parts.hour]
                .compactMap { $0 }
        }
        var rules: [(name: String, remaining: Int?, period: (Date, Int) -> [Int], lastKept: [Int]?)] = [
            ("last", last, { _, index in [index] }, nil),
            ("hourly", hourly, { date, _ in period(date, [.year, .month, .day, .hour]) }, nil),
            ("daily", daily, { date, _ in period(date, [.year, .month, .day]) }, nil),
            ("weekly", weekly, { date, _ in period(date, [.yearForWeekOfYear, .weekOfYear]) }, nil),
            ("monthly", monthly, { date, _ in period(date, [.year, .month]) }, nil),
            ("yearly", yearly, { date, _ in period(date, [.year]) }, nil),
        ]
        var decisions: [Decision] = []
        for (index, backup) in ordered.enumerated() {
            var reasons: [String] = []
            if let within, within > 0, backup.time >= newest.addingTimeInterval(-within) {
                reasons.append("within")
            }
            for rule in rules.indices {
                guard let remaining = rules[rule].remaining, remaining != 0 else { continue }
                let bucket = rules[rule].period(backup.time, index)
                guard bucket != rules[rule].lastKept else { continue }
                rules[rule].lastKept = bucket
                if remaining > 0 { rules[rule].remaining = remaining - 1 }
                reasons.append(rules[rule].name)
            }
            decisions.append(Decision(id: backup.id, time: backup.time, keep: !reasons.isEmpty, reasons: reasons))
        }
        return decisions
    }
}
