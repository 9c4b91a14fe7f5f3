import Foundation

/// Trees for backup tests: a rich one to back up, and a description to compare trees by.
enum TreeDescription {
    /// Every entry's type, mode, owner, mtime, size and link target, plus file contents, as `find` and
    /// `sha256sum` see them (independent of convoy's own code). `directoryTimes: false` leaves out directories'
    /// mtimes and link counts (for trees written to since, and overlays, which count directory links their own
    /// way); `linkCounts: false` leaves out every link count (an overlay shows hard links as separate files).
    static func describe(_ directory: String, directoryTimes: Bool = true, linkCounts: Bool = true) throws -> String {
        let listing = try Command.check("/usr/bin/find", [directory, "-printf", "%P|%y|%m|%U|%G|%T@|%s|%l|%n\\n"])
        let lines = listing.split(separator: "\n").map { line -> String in
            // Directory sizes depend on the filesystem's history, not on content.
            var fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            if fields.count > 8, fields[1] == "d" {
                fields[6] = "-"
                if !directoryTimes { (fields[5], fields[8]) = ("-", "-") }
            }
            if fields.count > 8, !linkCounts { fields[8] = "-" }
            return fields.joined(separator: "|")
        }
        let sums = try Command.check("/bin/sh",
                                     ["-c", "cd '\(directory)' && find . -type f -exec sha256sum {} + | sort"])
        return lines.sorted().joined(separator: "\n") + "\n" + sums
    }

    /// Fills `path` with every kind of entry: data, text, symlinks, a hard link, a fifo, a sparse file, odd
    /// modes and owners, old times.
    @discardableResult
    static func populate(_ path: String) throws -> String {
        let script = """
            set -e; cd '\(path)'
            mkdir -p dir/sub empty
            head -c 3000000 /dev/urandom > dir/random.bin
            yes 'a compressible line of text' | head -n 200000 > dir/sub/text.log
            echo small > small.txt; ln -s small.txt link; ln -s /nowhere dangling
            echo linked > dir/hard-a; ln dir/hard-a hard-b; mkfifo dir/pipe
            truncate -s 50M sparse.img; printf data | dd of=sparse.img bs=1 seek=20000000 conv=notrunc 2>/dev/null
            chmod 600 dir/sub/text.log; chmod 2750 dir/sub; chown 1234:5678 dir/random.bin
            touch -h -d '2020-01-02 03:04:05.123456789' dangling empty dir/random.bin
            """
        try Command.check("/bin/sh", ["-c", script])
        return path
    }
}
