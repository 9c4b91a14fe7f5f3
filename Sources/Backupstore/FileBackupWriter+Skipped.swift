import ConvoyCore

extension FileBackupWriter {
    /// Entries left out of a backup: the first `skippedListed` kept to show, all counted.
    struct SkippedList {
        private(set) var listed: [SkippedEntry] = []
        private(set) var count = 0

        mutating func add(_ entry: SkippedEntry) {
            if listed.count < FileBackupWriter.skippedListed { listed.append(entry) }
            count += 1
        }
    }

    /// The entries without the files at `vanished` (gone between the scan and their reading), and without the
    /// hard links naming those files, which would have nothing to link to; each left-out link is recorded.
    static func leavingOut(_ vanished: Set<Int>, of entries: [Entry], stats: inout Manifest.Stats,
                           skipped: inout SkippedList) -> [Entry] {
        var gonePaths: Set<ByteString> = []
        for index in vanished {
            gonePaths.insert(entries[index].path)
            stats.files -= 1
            stats.bytes -= entries[index].size
        }
        var kept: [Entry] = []
        kept.reserveCapacity(entries.count - vanished.count)
        for (index, entry) in entries.enumerated() where !vanished.contains(index) {
            if entry.type == .hardlink, let target = entry.target, gonePaths.contains(target) {
                let reason = "the file it is a hard link to (\(target)) vanished during the backup"
                skipped.add(SkippedEntry(path: entry.path, reason: reason))
                continue
            }
            kept.append(entry)
        }
        return kept
    }
}
