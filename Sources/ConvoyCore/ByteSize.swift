/// Sizes as Convoy accepted them: plain bytes, or a number followed by one of k, m, g, t (either case) in powers
/// of 1024.
public enum ByteSize {
    public static func parse(_ text: String, option: String = "size") throws(ConvoyError) -> UInt64 {
        let trimmed = text.trimmingSpaces()
        guard let last = trimmed.last else {
            throw .invalid("invalid \(option) '': give bytes or a number with k, m, g or t (e.g. 10G)")
        }
        var digits = Substring(trimmed)
        var shift: UInt64 = 0
        switch last {
        case "k", "K": shift = 10
        case "m", "M": shift = 20
        case "g", "G": shift = 30
        case "t", "T": shift = 40
        default: break
        }
        if shift > 0 { digits = digits.dropLast() }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = UInt64(digits) else {
            throw .invalid("invalid \(option) '\(text)': give bytes or a number with k, m, g or t (e.g. 10G)")
        }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: UInt64(1) << shift)
        guard !overflow, bytes <= UInt64(Int64.max) else {
            throw .invalid("invalid \(option) '\(text)': too large")
        }
        guard bytes > 0 else {
            throw .invalid("invalid \(option) '\(text)': must be greater than zero")
        }
        return bytes
    }

    /// Human form for tables: the largest unit that divides the size exactly, else one decimal.
    public static func format(_ bytes: UInt64) -> String {
        let units: [(String, UInt64)] = [("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)]
        for (suffix, unit) in units where bytes >= unit {
            if bytes % unit == 0 { return "\(bytes / unit)\(suffix)" }
            let tenths = Int((Double(bytes) / Double(unit) * 10).rounded())
            return "\(tenths / 10).\(tenths % 10)\(suffix)"
        }
        return "\(bytes)B"
    }
}

extension String {
    func trimmingSpaces() -> String {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" { view = view.dropFirst() }
        while let last = view.last, last == " " || last == "\t" { view = view.dropLast() }
        return String(view)
    }
}
