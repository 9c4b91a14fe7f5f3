import Foundation

/// The backup scheduler's time: the system's. In a debug build, `CONVOY_DEBUG_CLOCK_FILE` names a file holding
/// seconds since the epoch, read at every tick, so a test moves a day forward with a write instead of waiting a
/// day; the scheduler then also looks every 0.2 s instead of every 15.
public struct PolicyClock: Sendable {
    let file: String?

    public static let system = PolicyClock(file: nil)

    public static func fromEnvironment() -> PolicyClock {
        #if DEBUG
        if let file = ProcessInfo.processInfo.environment["CONVOY_DEBUG_CLOCK_FILE"], !file.isEmpty {
            return PolicyClock(file: file)
        }
        #endif
        return .system
    }

    /// The file's time, or the system's when there is no file (or it holds no number yet).
    public func now() -> Date {
        guard let file, let text = try? String(contentsOfFile: file, encoding: .utf8),
              let seconds = Double(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return Date() }
        return Date(timeIntervalSince1970: seconds)
    }

    var tick: Duration { file == nil ? .seconds(15) : .milliseconds(200) }
}
