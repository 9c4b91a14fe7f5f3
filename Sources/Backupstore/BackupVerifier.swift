import ConvoyCore

/// Re-reads every block a backup references and reports each missing or corrupt one by name. Each block is checked
/// against its name (SHA-256), and against every checksum the manifest records for it, which mounts and restores
/// rely on.
public struct BackupVerifier: Sendable {
    public struct Problem: Sendable, Equatable, Codable {
        public enum Kind: String, Sendable, Codable { case missing, corrupt }
        public var block: String
        public var kind: Kind
        public var detail: String
        /// A file that uses the block.
        public var path: String

        enum CodingKeys: String, CodingKey { case block = "Block", kind = "Kind", detail = "Detail", path = "Path" }
    }

    public let repository: BackupRepository

    public init(repository: BackupRepository) {
        self.repository = repository
    }

    public func verify(_ manifest: Manifest, progress: ProgressSink = { _ in }) async throws(ConvoyError) -> [Problem] {
        var users: [String: String] = [:]
        var order: [String] = []
        var sizes: [String: UInt64] = [:]
        var checksums: [String: [(checksum: BlockChecksum, path: String)]] = [:]
        for entry in manifest.entries {
            for chunk in entry.chunks ?? [] {
                if let checksum = chunk.checksum,
                   checksums[chunk.hash]?.contains(where: { $0.checksum == checksum }) != true {
                    checksums[chunk.hash, default: []].append((checksum, entry.path.description))
                }
                guard users[chunk.hash] == nil else { continue }
                users[chunk.hash] = entry.path.description
                sizes[chunk.hash] = UInt64(chunk.length)
                order.append(chunk.hash)
            }
        }
        var state = WorkProgress(phase: "verifying", bytesTotal: sizes.values.reduce(0, +), itemsTotal: order.count)
        progress(state)
        var problems: [Problem] = []
        for hash in order {
            do {
                let block = try await repository.plainBlockReadOnce(hash)
                if let recordedChecksums = checksums[hash] {
                    let actual = block.withUnsafeBytes { BlockChecksum.of($0) }
                    for recorded in recordedChecksums where recorded.checksum != actual {
                        problems.append(Problem(block: hash, kind: .corrupt,
                                                detail: "the manifest records checksum \(recorded.checksum) for block "
                                                    + "\(hash) in \(recorded.path); its content's is \(actual)",
                                                path: recorded.path))
                    }
                }
            } catch where error.kind == .notFound {
                problems.append(Problem(block: hash, kind: .missing, detail: error.message, path: users[hash] ?? ""))
            } catch where error.kind == .driverFailure {
                problems.append(Problem(block: hash, kind: .corrupt, detail: error.message, path: users[hash] ?? ""))
            }
            state.itemsDone += 1
            state.bytesDone += sizes[hash] ?? 0
            progress(state)
        }
        return problems
    }
}
