import ConvoyCore

/// What a manifest's entries must satisfy before a restore writes them (FileRestorer) or a mount serves them
/// (BackupFS): one place, so both refuse the same manifests. Each check returns the problem, worded to follow
/// "the manifest has", or nil.
///
/// The decoder (ManifestCodec) checks less: the structure, and the bounds every reader of a decoded manifest relies
/// on (sizes and chunk ends an off_t holds, sizes that add up). A manifest it accepts still names its blocks, so
/// garbage collection and verification can go on using it when these rules refuse it.
public enum ManifestRules {
    /// The largest file size and chunk end: what an off_t holds.
    public static let maximumSize = UInt64(Int64.max)

    /// "" is the root; any other path is relative and `/`-separated, with no empty, `.` or `..` component, and no
    /// NUL (C calls would cut the path there).
    public static func pathProblem(_ path: ByteString) -> String? {
        if path.isEmpty { return nil }
        let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
        let safe = path.withBytes { bytes in
            !bytes.contains(0) && bytes.split(separator: slash, omittingEmptySubsequences: false)
                .allSatisfy { !$0.isEmpty && !$0.elementsEqual([dot]) && !$0.elementsEqual([dot, dot]) }
        }
        return safe ? nil : "an unsafe path \(quoted(path))"
    }

    /// The directory holding a safe path's entry, and its name.
    public static func split(_ path: ByteString) -> (parent: ByteString, name: ByteString) {
        path.parentAndName
    }

    /// A file's chunks must be non-empty, in order, apart and inside the file, whose size an off_t must hold: a
    /// read bisects them and never serves one chunk's bytes at another's place, and every write lands in the file.
    /// Their lengths then add up to at most the size.
    public static func chunkProblem(_ entry: Entry) -> String? {
        guard entry.size <= maximumSize else { return "an impossible size \(entry.size) of \(quoted(entry.path))" }
        var end: UInt64 = 0
        for chunk in entry.chunks ?? [] {
            guard chunk.length > 0 else { return "an empty chunk in \(quoted(entry.path))" }
            guard chunk.offset >= end else { return "overlapping chunks in \(quoted(entry.path))" }
            let (chunkEnd, overflow) = chunk.offset.addingReportingOverflow(UInt64(chunk.length))
            guard !overflow, chunkEnd <= entry.size else { return "chunks past the end of \(quoted(entry.path))" }
            end = chunkEnd
        }
        return nil
    }

    /// A path for a message: quoted (bytes that are not UTF-8 as `\xNN`), and cut short when a crafted one is long.
    public static func quoted(_ path: ByteString) -> String {
        let text = path.description
        return text.utf8.count <= 200 ? "'\(text)'" : "'\(text.prefix(100))…'"
    }
}
