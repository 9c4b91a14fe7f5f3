/// Durations as people write them on a command line: numbers with units, summed (`90s`, `30m`, `12h`, `7d`,
/// `2w`, `1y`, `1d12h`). A day is 24 hours and a year 365 days: retention rules count time, not calendars.
public enum DurationText {
    static let units: [Character: Double] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800,
                                             "y": 31_536_000]

    public static func seconds(_ text: String, option: String) throws(ConvoyError) -> Double {
        var total = 0.0
        var number = ""
        var sawUnit = false
        for character in text {
            if character.isASCII, character.isNumber {
                number.append(character)
            } else if let unit = units[character], let value = Double(number), !number.isEmpty {
                total += value * unit
                number = ""
                sawUnit = true
            } else {
                throw .invalid("\(option): '\(text)' is not a duration such as 90s, 30m, 12h, 7d, 2w, 1y or 1d12h")
            }
        }
        guard number.isEmpty, sawUnit else {
            throw .invalid("\(option): '\(text)' is not a duration such as 90s, 30m, 12h, 7d, 2w, 1y or 1d12h")
        }
        return total
    }
}
