import Backupstore
import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A manifest's tree indexed once at mount, so that each FUSE call costs at most one dictionary lookup: node id or
/// (parent, name) → entry, directory → children, hard link → the entry holding its data, and link counts. Checked
/// while indexed: a manifest whose paths or chunks do not fit together is refused at mount rather than served as wrong
/// bytes.
struct BackupTree: Sendable {
    let entries: [Entry]
    /// The root directory's entry.
    let root: Int
    /// Relative path ("" for the root) → index of its entry.
    private let indexByPath: [ByteString: Int]
    /// For each entry, the entry whose attributes and data it shows: itself, or for a hard link the first link.
    private let resolved: [Int]
    /// Directory entry → its children's entries, in manifest order.
    private let childrenByDirectory: [Int: [Int]]
    /// Per entry shown (see `resolved`): st_nlink.
    private let linkCounts: [Int]
    /// Decoded extended attributes, by name, of the entries that have any.
    private let attributes: [Int: [(name: ByteString, value: [UInt8])]]
    /// Bytes of file data (holes excluded), for statfs.
    let dataBytes: UInt64

    init(_ manifest: Manifest) throws(ConvoyError) {
        let entries = manifest.entries
        let what = "backup \(manifest.id) of volume \(manifest.volume)"
        var indexByPath: [ByteString: Int] = [:]
        indexByPath.reserveCapacity(entries.count)
        for (index, entry) in entries.enumerated() {
            guard indexByPath.updateValue(index, forKey: entry.path) == nil else {
                throw Self.inconsistent(what, "lists \(ManifestRules.quoted(entry.path)) twice")
            }
        }
        guard let root = indexByPath[""], entries[root].type == .directory else {
            throw Self.inconsistent(what, "has no root directory")
        }

        var resolved = Array(entries.indices)
        var children: [Int: [Int]] = [root: []]
        var linkCounts = entries.map { $0.type == .directory ? 2 : 1 }
        var attributes: [Int: [(name: ByteString, value: [UInt8])]] = [:]
        var dataBytes: UInt64 = 0
        for (index, entry) in entries.enumerated() where index != root {
            if let problem = ManifestRules.pathProblem(entry.path) { throw Self.inconsistent(what, "has \(problem)") }
            guard let parent = indexByPath[ManifestRules.split(entry.path).parent],
                  entries[parent].type == .directory else {
                throw Self.inconsistent(what, "places \(ManifestRules.quoted(entry.path)) outside its directories")
            }
            children[parent, default: []].append(index)
            switch entry.type {
            case .directory:
                linkCounts[parent] += 1
            case .hardlink:
                guard let first = entry.target.flatMap({ indexByPath[$0] }), entries[first].type == .file else {
                    throw Self.inconsistent(what, "links \(ManifestRules.quoted(entry.path)) to "
                        + "\(ManifestRules.quoted(entry.target ?? "")), which is not a file in it")
                }
                resolved[index] = first
                linkCounts[first] += 1
            case .file:
                if let problem = ManifestRules.chunkProblem(entry) { throw Self.inconsistent(what, "has \(problem)") }
                // Chunks inside the file add up to at most its size; the files' sizes add up without overflow in a
                // decoded manifest, but not necessarily in one built in memory.
                let stored = (entry.chunks ?? []).reduce(UInt64(0)) { $0 + UInt64($1.length) }
                let (sum, overflow) = dataBytes.addingReportingOverflow(stored)
                guard !overflow else { throw Self.inconsistent(what, "holds more than 2^64 bytes of data") }
                dataBytes = sum
            default:
                break
            }
            if let encoded = entry.xattrs, !encoded.isEmpty {
                attributes[index] = try Self.decode(encoded, of: entry.path, in: what)
            }
        }
        if let encoded = entries[root].xattrs, !encoded.isEmpty {
            attributes[root] = try Self.decode(encoded, of: "/", in: what)
        }
        self.entries = entries
        self.root = root
        self.indexByPath = indexByPath
        self.resolved = resolved
        self.childrenByDirectory = children
        self.linkCounts = linkCounts
        self.attributes = attributes
        self.dataBytes = dataBytes
    }

    // MARK: Lookups

    /// The entry named `name` in directory `directory` (its own index: `entry(_:)` and `attributes(of:)`
    /// resolve hard links), if there is one.
    func child(named name: ByteString, of directory: Int) -> Int? {
        indexByPath[entries[directory].path.appending(name)]
    }

    /// The FUSE node id of an entry: 1 (FUSE_ROOT_ID) for the root, position + 2 for the others; a hard link
    /// has its first link's, so the kernel sees one inode.
    func nodeID(of index: Int) -> UInt64 {
        let shown = resolved[index]
        return shown == root ? 1 : UInt64(shown) + 2
    }

    /// The entry of a node id that `nodeID(of:)` gave; nil for any other number.
    func index(ofNode node: UInt64) -> Int? {
        if node == 1 { return root }
        guard node >= 2, node - 2 < UInt64(entries.count), Int(node - 2) != root else { return nil }
        return Int(node - 2)
    }

    /// A directory's entries (their own indices: `name(of:)` gives the name, `attributes(of:)` resolves links),
    /// in manifest order.
    func children(of directory: Int) -> [Int] {
        childrenByDirectory[directory] ?? []
    }

    func name(of index: Int) -> ByteString {
        ManifestRules.split(entries[index].path).name
    }

    func entry(_ index: Int) -> Entry {
        entries[resolved[index]]
    }

    func extendedAttributes(of index: Int) -> [(name: ByteString, value: [UInt8])] {
        attributes[resolved[index]] ?? []
    }

    /// What stat(2) reports for an entry. Inode numbers are the node ids, shared by hard links.
    func attributes(of index: Int) -> stat {
        let shown = resolved[index]
        let entry = entries[shown]
        var info = stat()
        info.st_ino = ino_t(nodeID(of: shown))
        info.st_mode = Self.fileType(entry.type) | mode_t(entry.mode & 0o7777)
        info.st_nlink = nlink_t(linkCounts[shown])
        info.st_uid = entry.uid
        info.st_gid = entry.gid
        info.st_rdev = dev_t(entry.rdev ?? 0)
        switch entry.type {
        case .file:
            info.st_size = off_t(clamping: entry.size)
            // At most the size (checked at init), so no overflow.
            let stored = (entry.chunks ?? []).reduce(UInt64(0)) { $0 + UInt64($1.length) }
            info.st_blocks = blkcnt_t(clamping: (stored + 511) / 512)
        case .symlink:
            info.st_size = off_t(entry.target?.count ?? 0)
        default:
            info.st_size = 0
        }
        let time = timespec(tv_sec: Int(entry.mtimeSeconds), tv_nsec: Int(entry.mtimeNanoseconds))
        info.st_mtim = time
        info.st_atim = time
        info.st_ctim = time
        return info
    }

    // MARK: Building

    static func fileType(_ kind: Entry.Kind) -> mode_t {
        switch kind {
        case .directory: S_IFDIR
        case .file, .hardlink: S_IFREG
        case .symlink: S_IFLNK
        case .fifo: S_IFIFO
        case .socket: S_IFSOCK
        case .charDevice: S_IFCHR
        case .blockDevice: S_IFBLK
        }
    }

    private static func decode(_ encoded: [ByteString: String], of path: ByteString,
                               in what: String) throws(ConvoyError) -> [(name: ByteString, value: [UInt8])] {
        var decoded: [(name: ByteString, value: [UInt8])] = []
        for (name, value) in encoded {
            guard let bytes = Data(base64Encoded: value) else {
                throw inconsistent(what, "holds an undecodable value of xattr \(name) of \(ManifestRules.quoted(path))")
            }
            decoded.append((name, Array(bytes)))
        }
        return decoded.sorted { $0.name < $1.name }
    }

    private static func inconsistent(_ what: String, _ problem: String) -> ConvoyError {
        ConvoyError(.driverFailure, "the manifest of \(what) \(problem); it cannot be mounted (verify the backup)")
    }
}

extension FuzzEntryPoints {
    /// A manifest's payload decoded, checked as a file restore checks it, and indexed as a mount indexes it, with
    /// every entry's lookups and a few seeks in each file: what a crafted manifest reaches before any block is read.
    public static func tree(_ bytes: [UInt8]) throws(ConvoyError) {
        let manifest = try manifest(bytes)
        var refused: ConvoyError?
        do throws(ConvoyError) { try restorePlan(manifest) } catch { refused = error }
        let tree = try BackupTree(manifest)
        for index in tree.entries.indices {
            _ = tree.index(ofNode: tree.nodeID(of: index))
            _ = tree.attributes(of: index)
            _ = tree.extendedAttributes(of: index)
            for child in tree.children(of: index) { _ = tree.child(named: tree.name(of: child), of: index) }
            let entry = tree.entry(index)
            guard entry.type == .file else { continue }
            for offset in [0, entry.size / 2, entry.size &- 1] {
                _ = FileReader.seek(in: entry, from: offset, data: true)
                _ = FileReader.seek(in: entry, from: offset, data: false)
            }
        }
        if let refused { throw refused }
    }
}
