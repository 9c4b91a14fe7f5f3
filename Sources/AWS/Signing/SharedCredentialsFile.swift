import Foundation

/// The INI dialect of `~/.aws/credentials`: `[profile]` headers, `key = value` lines, `#` and `;` comments.
/// Keys are lowercased, as the AWS CLI treats them case-insensitively.
enum SharedCredentialsFile {
    static func parse(_ text: String) -> [String: [String: String]] {
        var profiles: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                let name = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                current = name
                profiles[name, default: [:]] = profiles[name, default: [:]]
                continue
            }
            guard let profile = current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            profiles[profile, default: [:]][key] = value
        }
        return profiles
    }
}
