import Synchronization

/// The files open on a mount, by the handle the kernel gives back with each read (`fuse_file_info.fh`). A table
/// rather than a pointer in the handle: a mount adopted from an earlier daemon (`BackupMount.adopt`) receives
/// handles that process made, which name nothing here; such a handle is taken as a fresh open of the node the
/// request names, with read-ahead state of its own from then on.
///
/// Handle 0 is a file the kernel opened without asking (FUSE's no-open mode): its reads keep read-ahead state per
/// node, so two readers of one file at once share it (each still gets its bytes; read-ahead may judge their
/// mix random). At most `nodesWithoutHandle` such states are kept; past that they start over.
final class OpenFiles: Sendable {
    private struct State {
        var files: [UInt64: OpenFile] = [:]
        var byNode: [Int: OpenFile] = [:]
        var next: UInt64 = 1
    }

    static let nodesWithoutHandle = 4096

    private let state = Mutex(State())
    /// The high half of every handle made here: handles an earlier process made differ from them (a random
    /// 31-bit value, never 0, so 1 in 2^31 that two processes in a row share it).
    private let epoch = UInt64.random(in: 1..<(1 << 31)) << 32

    func open(_ file: OpenFile) -> UInt64 {
        state.withLock { state in
            let handle = epoch | (state.next & 0xffff_ffff)
            state.next += 1
            state.files[handle] = file
            return handle
        }
    }

    /// The open file of `handle` on entry `node`; for a handle not made here, `adopt` makes one (nil: the node is
    /// not a file). A handle of ours on another node (an earlier process's handle that happens to equal one of
    /// ours) gets a file of its own, not kept.
    func file(_ handle: UInt64, node: Int, adopt: () -> OpenFile?) -> OpenFile? {
        state.withLock { state in
            if handle == 0 {
                if let file = state.byNode[node] { return file }
                guard let file = adopt() else { return nil }
                if state.byNode.count >= Self.nodesWithoutHandle { state.byNode.removeAll(keepingCapacity: true) }
                state.byNode[node] = file
                return file
            }
            if let file = state.files[handle] {
                return file.node == node ? file : adopt()
            }
            guard let file = adopt() else { return nil }
            state.files[handle] = file
            return file
        }
    }

    func release(_ handle: UInt64) {
        _ = state.withLock { $0.files.removeValue(forKey: handle) }
    }
}
