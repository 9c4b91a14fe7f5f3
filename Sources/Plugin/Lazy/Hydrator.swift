import Backupstore
import ConvoyCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where one volume's hydration stands; read by Get/inspect while the hydrator writes it.
final class HydrationProgress: Sendable {
    struct Value: Sendable {
        var bytesDone: UInt64 = 0
        var bytesTotal: UInt64 = 0
        var filesDone = 0
        var filesTotal = 0
    }

    private let value: Mutex<Value>
    /// The sink inside a class: a closure kept directly in a Mutex gained two reabstraction thunks at every
    /// `withLock` (the inout value is converted to the generic form and back), so each report called through one
    /// more pair, and hydration crashed with a stack overflow after about 52,000 files.
    private let sink: Mutex<SinkBox?> = Mutex(nil)

    private final class SinkBox: Sendable {
        let report: ProgressSink
        init(_ report: @escaping ProgressSink) { self.report = report }
    }

    /// A file backup hydrates every file's bytes; a block backup only the mapped ranges of its one image.
    init(manifest: Manifest) {
        var value = Value()
        for entry in manifest.entries where entry.type == .file {
            value.filesTotal += 1
            value.bytesTotal += manifest.kind == .blocks
                ? entry.chunks?.reduce(0) { $0 + UInt64($1.length) } ?? 0
                : entry.size
        }
        self.value = Mutex(value)
    }

    var current: Value { value.withLock { $0 } }

    /// Also reports to a job's progress from now on.
    func follow(_ report: @escaping ProgressSink) {
        let box = SinkBox(report)
        sink.withLock { $0 = box }
    }

    func add(bytes: UInt64, files: Int) {
        let now = value.withLock { value in
            value.bytesDone += bytes
            value.filesDone += files
            return value
        }
        let box = sink.withLock { $0 }
        box?.report(WorkProgress(phase: "hydrating", bytesDone: now.bytesDone, bytesTotal: now.bytesTotal,
                             itemsDone: now.filesDone, itemsTotal: now.filesTotal))
    }
}

/// Set to stop a hydration between entries (the job runs on its own task, which the volume's owner cannot cancel).
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func stop() { value.store(true, ordering: .relaxed) }
    var stopped: Bool { value.load(ordering: .relaxed) }
}

/// Makes a lazily restored volume local by copying every entry of its backup up through the overlay: a change of
/// owner to the owner it already has makes overlayfs copy the entry (data, metadata, xattrs) into the volume's
/// directory, so the kernel does the copying and nothing changes under the mounted overlay. What is already in
/// the volume's directory (hydrated before a restart, written or deleted by the user) is skipped, so hydration
/// resumes where it stopped.
struct Hydrator: Sendable {
    let manifest: Manifest
    let merged: String
    let upper: String
    /// Wait before each file: throttles hydration (tests use it to read a file before hydration reaches it).
    let pause: Duration
    let stop: StopFlag
    /// Runs the copy-ups, which block until the kernel has copied a whole file. Not the store's I/O pool: the
    /// FUSE reads a copy-up waits for need that pool, and must never queue behind the copy-ups themselves.
    let threads: BlockingIOPool
    /// Entries copied up at once.
    static let width = 4

    func run(progress: HydrationProgress) async throws(ConvoyError) {
        let entries = manifest.entries.filter { !$0.path.isEmpty }
        try await forEachBounded(entries, width: Self.width, pause: pause, stop: stop, pauses: { $0.type == .file }) {
            [merged, upper, threads] entry throws(ConvoyError) in
            try await threads.run { () throws(ConvoyError) in try Self.copyUp(entry, merged: merged, upper: upper) }
            if entry.type == .file { progress.add(bytes: entry.size, files: 1) }
        }
        try restoreDirectoryTimes()
    }

    /// The overlay and the volume's directory, opened for one step. The container may change both trees while
    /// hydration runs: everything below them is reached from these descriptors without following a symlink
    /// (DirectoryDescriptor). Opened per step and closed with it: a descriptor left open in the overlay would
    /// keep it busy when hydration ends and the volume is finished.
    private static func roots(merged: String, upper: String) throws(ConvoyError)
        -> (merged: DirectoryDescriptor, upper: DirectoryDescriptor) {
        do throws(PosixError) {
            return (try DirectoryDescriptor.open(merged), try DirectoryDescriptor.open(upper))
        } catch {
            throw error.convoyError()
        }
    }

    /// Copies one entry up unless the volume's directory has it already. An entry the user deleted is done, and
    /// so is one whose directory the user replaced (by a file or a symlink): the backup's entry is no longer part
    /// of the volume, and a symlink there must never lead the change of owner elsewhere.
    static func copyUp(_ entry: Entry, merged mergedPath: String, upper upperPath: String) throws(ConvoyError) {
        let (merged, upper) = try roots(merged: mergedPath, upper: upperPath)
        do throws(PosixError) {
            let (local, name) = try upper.parent(of: entry.path)
            if local.status(of: name) != nil { return }
        } catch where error.code == ENOENT {
            // Not copied up yet (nor its directory).
        } catch where error.pathIsGone {
            return
        } catch {
            throw error.convoyError()
        }
        do throws(PosixError) {
            let (directory, name) = try merged.parent(of: entry.path)
            // The change of owner to the owner the backup gives makes overlayfs copy the entry up.
            let changed = name.withCString { fchownat(directory.fd, $0, entry.uid, entry.gid, AT_SYMLINK_NOFOLLOW) }
            guard changed == 0 || errno == ENOENT else {
                throw PosixError(errno, "copy up", directory.path + "/" + name.description)
            }
        } catch where error.pathIsGone {
            return
        } catch {
            throw error.convoyError()
        }
    }

    /// Copying children up changed their directories' times; put back the backup's, deepest first.
    private func restoreDirectoryTimes() throws(ConvoyError) {
        let merged = try Self.roots(merged: self.merged, upper: upper).merged
        for entry in manifest.entries.reversed() where entry.type == .directory {
            var times = [timespec(tv_sec: Int(entry.mtimeSeconds), tv_nsec: Int(entry.mtimeNanoseconds)),
                         timespec(tv_sec: Int(entry.mtimeSeconds), tv_nsec: Int(entry.mtimeNanoseconds))]
            do throws(PosixError) {
                let directory = try merged.directory(entry.path)
                guard futimens(directory.fd, &times) == 0 else {
                    throw PosixError(errno, "set times of", directory.path)
                }
            } catch where error.pathIsGone {
                continue
            } catch {
                throw error.convoyError()
            }
        }
    }
}
