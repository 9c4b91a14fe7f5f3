import ConvoyCore

/// Checks a whole store, as `restic check` does: every manifest is read and every block it references must be in
/// a pack index or stored on its own; then a subset of the blocks (none, a random fraction, a fixed part of a
/// partition, or all) is read and re-hashed, and checked against the checksums the manifests record. Reading a
/// different part each time (`1/10`, then `2/10`, ...) covers the store in turn.
public struct StoreVerifier: Sendable {
    public enum Subset: Sendable, Equatable {
        case none
        /// About this fraction of the blocks, chosen anew each run.
        case fraction(Double)
        /// Part `part` (1-based) of `of` parts of the blocks, split by their names: the same blocks every time.
        case part(Int, of: Int)
        case all

        /// `5%`, `2.5%`, `1/10`, `all`.
        public static func parse(_ text: String) throws(ConvoyError) -> Subset {
            if text == "all" { return .all }
            if text.hasSuffix("%"), let percent = Double(text.dropLast()), percent > 0, percent <= 100 {
                return percent == 100 ? .all : .fraction(percent / 100)
            }
            let parts = text.split(separator: "/")
            if parts.count == 2, let part = Int(parts[0]), let count = Int(parts[1]), count >= 1, (1...count) ~= part {
                return count == 1 ? .all : .part(part, of: count)
            }
            throw .invalid("read-data-subset: '\(text)' is not a share of the blocks such as 5%, 1/10 or all")
        }
    }

    public struct Report: Sendable {
        public var backups = 0
        public var blocksReferenced = 0
        public var blocksRead = 0
        public var bytesRead: UInt64 = 0
        /// Problems of blocks (the path names the backup and a file that uses the block), and manifests that
        /// could not be read (block "", path the backup).
        public var problems: [BackupVerifier.Problem] = []
    }

    public let repository: BackupRepository

    public init(repository: BackupRepository) {
        self.repository = repository
    }

    public func verify(_ subset: Subset, progress: ProgressSink = { _ in }) async throws(ConvoyError) -> Report {
        var report = Report()
        let salt = UInt64.random(in: 0...UInt64.max)
        // The first user of each block, and for the blocks to read the checksums recorded for them.
        var users: [String: String] = [:]
        var checksums: [String: [BlockChecksum: String]] = [:]
        var sizes: [String: Int] = [:]
        let backups = try await repository.backups()
        var state = WorkProgress(phase: "reading manifests", itemsTotal: backups.count)
        for (volume, id) in backups {
            let manifest: Manifest
            do {
                manifest = try await repository.manifest(volume: volume, backup: id)
            } catch {
                report.problems.append(.init(block: "", kind: .corrupt, detail: "manifest of backup \(id) of volume "
                                             + "\(volume) cannot be read: \(error.message)", path: "\(volume)/\(id)"))
                continue
            }
            report.backups += 1
            for entry in manifest.entries {
                for chunk in entry.chunks ?? [] {
                    if users[chunk.hash] == nil {
                        users[chunk.hash] = "\(volume)/\(id): \(entry.path.description)"
                        sizes[chunk.hash] = Int(chunk.length)
                    }
                    if let checksum = chunk.checksum, Self.selected(chunk.hash, subset, salt: salt) {
                        checksums[chunk.hash, default: [:]][checksum] = "\(volume)/\(id): \(entry.path.description)"
                    }
                }
            }
            state.itemsDone += 1
            progress(state)
        }
        report.blocksReferenced = users.count
        let stored = try await repository.blockHashes()
        for (hash, user) in users.sorted(by: { $0.key < $1.key }) where !stored.contains(hash) {
            report.problems.append(.init(block: hash, kind: .missing,
                                         detail: "block \(hash) is in no pack index and not stored on its own",
                                         path: user))
        }
        let toRead = users.keys.filter { stored.contains($0) && Self.selected($0, subset, salt: salt) }.sorted()
        state = WorkProgress(phase: "reading blocks", bytesTotal: toRead.reduce(0) { $0 + UInt64(sizes[$1] ?? 0) },
                             itemsTotal: toRead.count)
        progress(state)
        for hash in toRead {
            let user = users[hash] ?? ""
            do {
                let block = try await repository.plainBlockReadOnce(hash)
                let actual = block.withUnsafeBytes { BlockChecksum.of($0) }
                for (recorded, path) in checksums[hash] ?? [:] where recorded != actual {
                    report.problems.append(.init(block: hash, kind: .corrupt, detail: "the manifest records "
                                                 + "checksum \(recorded) for block \(hash); its content's is \(actual)",
                                                 path: path))
                }
            } catch where error.kind == .notFound {
                report.problems.append(.init(block: hash, kind: .missing, detail: error.message, path: user))
            } catch where error.kind == .driverFailure {
                report.problems.append(.init(block: hash, kind: .corrupt, detail: error.message, path: user))
            }
            report.blocksRead += 1
            report.bytesRead += UInt64(sizes[hash] ?? 0)
            state.itemsDone = report.blocksRead
            state.bytesDone = report.bytesRead
            progress(state)
        }
        return report
    }

    /// Whether block `hash` (hex) is in the subset: its first 16 hex digits place it among the parts, or (mixed
    /// with this run's salt) below the fraction.
    static func selected(_ hash: String, _ subset: Subset, salt: UInt64) -> Bool {
        let value = UInt64(hash.prefix(16), radix: 16) ?? 0
        switch subset {
        case .none: return false
        case .all: return true
        case .part(let part, let count): return Int(value % UInt64(count)) == part - 1
        case .fraction(let fraction):
            return Double((value ^ salt).multipliedFullWidth(by: 0x9E37_79B9_7F4A_7C15).low >> 11)
                < fraction * Double(UInt64(1) << 53)
        }
    }
}
