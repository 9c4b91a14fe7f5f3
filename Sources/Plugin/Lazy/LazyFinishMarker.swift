import Backupstore
import ConvoyCore
import Drivers
#if canImport(Glibc)
import Glibc
#endif

/// The record that a lazy file volume's finish has begun: `<root>/lazy/<name>/finishing`, written and synced
/// (file and directory) before its overlay goes. At start, a lazy volume with it is finished (`makePlain` again,
/// then its record made plain) rather than mounted through its overlay again. It goes with the volume's lazy
/// directory once the volume's record says the volume is plain.
enum LazyFinishMarker {
    static func path(lazyRoot: String, volume: String) throws(ConvoyError) -> String {
        try PathGuard.child(of: lazyRoot, named: volume) + "/finishing"
    }

    static func write(lazyRoot: String, volume: String) throws(ConvoyError) {
        let path = try path(lazyRoot: lazyRoot, volume: volume)
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw PosixFile.failure("record the finish of lazy volume \(volume) in", path) }
        let synced = fsync(fd) == 0
        close(fd)
        let parent = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
        let directory = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        let directorySynced = directory >= 0 && fsync(directory) == 0
        if directory >= 0 { close(directory) }
        guard synced, directorySynced else {
            throw PosixFile.failure("sync the finish record of lazy volume \(volume) in", path)
        }
    }

    static func exists(lazyRoot: String, volume: String) -> Bool {
        guard let path = try? path(lazyRoot: lazyRoot, volume: volume) else { return false }
        var info = stat()
        return lstat(path, &info) == 0
    }

    static func remove(lazyRoot: String, volume: String) {
        guard let path = try? path(lazyRoot: lazyRoot, volume: volume) else { return }
        unlink(path)
    }
}
