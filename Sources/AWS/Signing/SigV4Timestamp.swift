import Foundation

/// The two UTC forms SigV4 uses: `yyyyMMdd` (credential scope) and `yyyyMMdd'T'HHmmss'Z'` (`X-Amz-Date`).
/// Built from calendar components rather than a DateFormatter: no locale, no shared formatter to guard.
struct SigV4Timestamp {
    let date: String
    let dateTime: String

    init(_ instant: Date) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: instant)
        func pad(_ value: Int?, _ width: Int) -> String {
            let text = String(value ?? 0)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        date = pad(parts.year, 4) + pad(parts.month, 2) + pad(parts.day, 2)
        dateTime = date + "T" + pad(parts.hour, 2) + pad(parts.minute, 2) + pad(parts.second, 2) + "Z"
    }
}
