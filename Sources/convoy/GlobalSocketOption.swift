/// Convoy's CLI took its socket as a global option before the command (`convoy --socket PATH create v`,
/// `convoy -s PATH list`); ours takes it as an option of each command. Scripts written for Convoy keep working:
/// a leading socket option is moved behind the command's own arguments (before a `--`, if any), where every
/// command accepts it (`daemon` as the socket it serves, the same meaning).
enum GlobalSocketOption {
    static func movedAfterCommand(_ arguments: [String]) -> [String] {
        var rest = arguments[...]
        var moved: [String] = []
        while let first = rest.first {
            if first == "--socket" || first == "-s", rest.count >= 2 {
                moved = ["--socket", rest[rest.startIndex + 1]]
                rest = rest.dropFirst(2)
            } else if first.hasPrefix("--socket=") {
                moved = ["--socket", String(first.dropFirst("--socket=".count))]
                rest = rest.dropFirst()
            } else {
                break
            }
        }
        // Nothing after it (`convoy --socket P`): leave it where it was, for the parser's own error.
        guard !moved.isEmpty, !rest.isEmpty else { return arguments }
        var result = Array(rest)
        let end = result.firstIndex(of: "--") ?? result.endIndex
        result.insert(contentsOf: moved, at: end)
        return result
    }
}
