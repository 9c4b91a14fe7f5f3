import Synchronization

/// The block hashes known to be in a store, shared by concurrent upload tasks: each block is uploaded once.
final class KnownBlocks: Sendable {
    private let hashes: Mutex<Set<String>>

    init(_ initial: Set<String>) {
        hashes = Mutex(initial)
    }

    /// True when the caller should upload `hash` (nobody has it yet); the caller now owns the upload.
    func claim(_ hash: String) -> Bool { hashes.withLock { $0.insert(hash).inserted } }

    /// Gives up a claim after a failed upload.
    func release(_ hash: String) { _ = hashes.withLock { $0.remove(hash) } }
}

/// Progress counters updated from concurrent tasks.
final class ProgressCounter: Sendable {
    private let state: Mutex<WorkProgress>
    private let sink: ProgressSink

    init(_ initial: WorkProgress, sink: @escaping ProgressSink) {
        state = Mutex(initial)
        self.sink = sink
        sink(initial)
    }

    func add(bytes: UInt64, items: Int = 0) {
        let snapshot = state.withLock { progress -> WorkProgress in
            progress.bytesDone += bytes
            progress.itemsDone += items
            return progress
        }
        sink(snapshot)
    }

    /// More work found (a scan still running adds what it finds), and the phase it is now in.
    func extend(bytes: UInt64, items: Int, phase: String) {
        let snapshot = state.withLock { progress -> WorkProgress in
            progress.bytesTotal += bytes
            progress.itemsTotal += items
            progress.phase = phase
            return progress
        }
        sink(snapshot)
    }

    var current: WorkProgress { state.withLock { $0 } }
}
