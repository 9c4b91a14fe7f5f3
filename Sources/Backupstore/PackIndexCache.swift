import ConvoyCore
import Foundation

/// A remote store's pack indexes kept on this host. An index never changes once written (a collection writes new
/// packs and deletes old ones), so a copy stays true as long as its pack is listed: a restore from S3 spent half
/// its GETs on the indexes of the packs it read (one ~1 KB object per 8 MiB pack), at every restore.
///
/// Best effort both ways: a copy that cannot be read or decoded is fetched again, one that cannot be written is
/// not kept. Copies of packs no longer listed are removed at each load. Only for plain stores: an encrypted
/// store's indexes stay sealed (the daemon does not keep them opened on disk).
public struct PackIndexCache: Sendable {
    public let directory: String

    /// `directory`: one per store (the daemon names it by a digest of the store's URL), under the daemon's root.
    public init(directory: String) {
        self.directory = directory
    }

    /// The copies of `ids` that read and decode, after removing those of packs not in `listed`: one job on the
    /// I/O pool (a load may find thousands of copies, and a cold read of each would stall a cooperative thread).
    func copies(of ids: [String], keepingOnly listed: Set<String>) async -> [String: [PackEntry]] {
        let found = try? await BlockingIOPool.shared.run { () -> [String: [PackEntry]] in
            forget(allBut: listed)
            var found: [String: [PackEntry]] = [:]
            for id in ids { if let entries = entries(id) { found[id] = entries } }
            return found
        }
        return found ?? [:]
    }

    /// Keeps copies of these indexes (as stored), on the I/O pool.
    func keep(_ indexes: [(id: String, bytes: [UInt8])]) async {
        guard !indexes.isEmpty else { return }
        _ = try? await BlockingIOPool.shared.run {
            for (id, bytes) in indexes { keep(id, bytes) }
        }
    }

    private func entries(_ id: String) -> [PackEntry]? {
        guard let data = FileManager.default.contents(atPath: path(id)) else { return nil }
        do throws(ConvoyError) {
            return try PackIndexCodec.decode(Array(data), pack: id)
        } catch {
            try? FileManager.default.removeItem(atPath: path(id))
            return nil
        }
    }

    private func keep(_ id: String, _ bytes: [UInt8]) {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o700])
        try? Data(bytes).write(to: URL(fileURLWithPath: path(id)), options: .atomic)
    }

    /// Removes the copies of packs not in `listed`.
    private func forget(allBut listed: Set<String>) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where !listed.contains(name) {
            try? FileManager.default.removeItem(atPath: directory + "/" + name)
        }
    }

    /// Pack ids are checked (32 hex digits) before they reach here.
    private func path(_ id: String) -> String { directory + "/" + id }
}
