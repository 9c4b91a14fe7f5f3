import Foundation

/// When a backup policy runs: every `every` seconds from an anchor, which is the policy's `at` time (HH:MM UTC)
/// on the day it was set, or else the moment it was set. A run is due when the first slot after the last
/// success has come; after downtime that is one run (catching up once), not one per missed slot, and the next
/// slot is then the first after that run.
public struct BackupSchedule: Sendable, Equatable {
    /// The shortest interval: a backup's snapshot, upload, forget and collection take time of their own.
    public static let shortest: Double = 60
    /// A failed (or interrupted) run is tried again after this long, or the interval when it is shorter.
    public static let retryDelay: Double = 300

    public let every: Double
    public let anchor: Date

    public init(every: Double, at: String?, createdAt: Date) throws(ConvoyError) {
        guard every >= Self.shortest, every.isFinite else {
            throw .invalid("every: a backup policy runs at most once a minute (every 1m or more)")
        }
        self.every = every
        guard let at else {
            anchor = createdAt
            return
        }
        let minutes = try Self.minutesOfDay(at)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        anchor = calendar.startOfDay(for: createdAt).addingTimeInterval(Double(minutes) * 60)
    }

    /// `HH:MM` (UTC) as minutes after midnight.
    public static func minutesOfDay(_ text: String) throws(ConvoyError) -> Int {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isASCII) }),
              let hours = Int(parts[0]), let minutes = Int(parts[1]), (0..<24).contains(hours),
              (0..<60).contains(minutes) else {
            throw .invalid("at: '\(text)' is not a time of day as HH:MM (UTC), such as 02:30")
        }
        return hours * 60 + minutes
    }

    /// The first slot strictly after `date`.
    public func slot(after date: Date) -> Date {
        let elapsed = date.timeIntervalSince(anchor)
        guard elapsed >= 0 else { return anchor }
        let passed = (elapsed / every).rounded(.down)
        return anchor.addingTimeInterval((passed + 1) * every)
    }

    /// The next run after the last success (or the policy's creation, never run), and whether it is due `now`;
    /// a failed attempt since then waits `retryDelay` (or the interval, when shorter) before the next try.
    public func next(lastSuccess: Date?, lastAttempt: Date?, createdAt: Date, now: Date) -> (at: Date, due: Bool) {
        var next = slot(after: lastSuccess ?? createdAt)
        if let lastAttempt, lastAttempt > (lastSuccess ?? .distantPast) {
            next = max(next, lastAttempt.addingTimeInterval(min(Self.retryDelay, every)))
        }
        return (next, next <= now)
    }
}
