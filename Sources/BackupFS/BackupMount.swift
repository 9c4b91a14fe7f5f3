import Backupstore
import CFuse
import ConvoyCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct BackupMountOptions: Sendable {
    /// Bound of the LRU of decompressed blocks, in bytes: of `memory` when given, else of the mount's own.
    public var cacheBytes: Int
    /// The daemon's memory for decompressed blocks, shared by all its mounts; nil: one of the mount's own.
    public var memory: BlockMemory?
    /// Blocks prefetched ahead of a file that is read sequentially.
    public var readAheadBlocks: Int
    /// 8: with blocks checked by their XXH3 checksum, a cold sequential read waits on the store's reads, and 8
    /// blocks in flight read 1 GiB in 0.35-0.42 s where 4 took 0.43-0.56 s (16: no better).
    public static let defaultReadAheadBlocks = 8
    /// Where to keep verified encoded blocks on disk (a directory store of their own), or nil for none.
    public var diskCacheDirectory: String?
    /// Seconds added to every block fetch, for tests that must slow hydration down.
    public var fetchDelay: Double
    /// False for mounts only browsed (`noexec`): nothing in a backup runs from its mount. Every mount is
    /// `nosuid,nodev`: a setuid binary or a device node a container wrote into its volume gives no one anything.
    public var allowsExecution: Bool
    /// Told of every read, block lookup and fetch (the daemon's metrics); nil: nothing is counted.
    public var observer: (any MountObserver)?

    public init(cacheBytes: Int = 256 << 20, memory: BlockMemory? = nil, readAheadBlocks: Int = defaultReadAheadBlocks,
                diskCacheDirectory: String? = nil, fetchDelay: Double = 0, allowsExecution: Bool = true) {
        self.cacheBytes = memory?.capacity ?? cacheBytes
        self.memory = memory
        self.readAheadBlocks = readAheadBlocks
        self.diskCacheDirectory = diskCacheDirectory
        self.fetchDelay = fetchDelay
        self.allowsExecution = allowsExecution
        self.observer = nil
    }
}

/// A backup's file tree mounted read-only through libfuse's low-level API, served by a thread of its own
/// (libfuse's multithreaded session loop) until `unmount()`. Releasing the object does not unmount: the thread serves
/// on. Blocking calls (`unmount`, reads of the mount) belong on threads that may block, not in a cooperative task's
/// hot path, though the mount's own fetches never depend on the cooperative pool.
public final class BackupMount: Sendable {
    public let mountpoint: String
    let filesystem: BackupFilesystem
    /// The mount point as /proc/self/mountinfo spells it, and the kernel's record of the mount made here.
    private let canonicalPath: String
    /// The mount table's entry for this mount when it was made (nil: not found then).
    public let kernelMount: MountInfo.Mount?
    /// Delivered by the serving thread once libfuse's loop has ended and the handle is destroyed.
    private let served: Delivery<Int32>
    /// The /dev/fuse descriptor of the connection, valid while the mount is served: a copy of it keeps the
    /// connection alive past this process (the FUSE keeper), for the next daemon to adopt.
    public let device: Int32

    static func mountOptions(_ options: BackupMountOptions) -> String {
        "ro,nosuid,nodev,\(options.allowsExecution ? "" : "noexec,")allow_other,default_permissions,"
            + "fsname=convoy-backup,subtype=convoy-backup,max_read=\(FuseOperations.maxRead)"
    }
    /// Kernel read-ahead for the mount, in KiB: whole 1 MiB requests when a file is read sequentially.
    static let readAheadKilobytes = Int(FuseOperations.maxRead >> 10)

    init(mountpoint: String, filesystem: BackupFilesystem, canonicalPath: String,
         kernelMount: MountInfo.Mount?, served: Delivery<Int32>, device: Int32) {
        self.device = device
        self.mountpoint = mountpoint
        self.filesystem = filesystem
        self.canonicalPath = canonicalPath
        self.kernelMount = kernelMount
        self.served = served
    }

    /// Mounts the manifest's tree read-only at `mountpoint` (an existing empty directory) and serves it from a
    /// thread of its own until `unmount()`. `log` receives one line per problem (e.g. a corrupt block, naming its
    /// hash).
    public static func mount(manifest: Manifest, repository: BackupRepository, at mountpoint: String,
                             options: BackupMountOptions = .init(),
                             log: @escaping @Sendable (String) -> Void) throws(ConvoyError) -> BackupMount {
        try checkMountpoint(mountpoint)
        // Resolved before mounting: afterwards resolving it would ask the file system, whose loop is not running yet.
        let canonicalPath = MountTable.canonical(mountpoint)
        let filesystem = try BackupFilesystem(manifest: manifest, repository: repository, options: options, log: log)
        guard let session = newSession(filesystem, options: mountOptions(options)) else {
            throw ConvoyError(.internalFailure, "libfuse refused the options of the mount of \(filesystem.label) "
                + "(see the daemon's standard error)")
        }
        guard fuse_session_mount(session, mountpoint) == 0 else {
            fuse_session_destroy(session)
            throw ConvoyError(.driverFailure, "cannot mount \(filesystem.label) at \(mountpoint): "
                + "check that /dev/fuse is usable and the daemon runs as root "
                + "(libfuse's reason is on the daemon's standard error)")
        }
        let kernelMount = MountInfo.mount(at: canonicalPath)
        if let kernelMount { MountTable.setReadAhead(kernelMount, kilobytes: readAheadKilobytes) }

        return BackupMount(mountpoint: mountpoint, filesystem: filesystem, canonicalPath: canonicalPath,
                           kernelMount: kernelMount, served: serve(session, filesystem, at: mountpoint),
                           device: fuse_session_fd(session))
    }

    /// Runs the session's loop on a thread of its own; the delivery says when it ended.
    static func serve(_ session: OpaquePointer, _ filesystem: BackupFilesystem,
                      at mountpoint: String) -> Delivery<Int32> {
        let served = Delivery<Int32>()
        let handle = FuseSession(pointer: session)
        let thread = Thread {
            let result = handle.serve()
            if result != 0 {
                filesystem.log("\(filesystem.label): the FUSE loop at \(mountpoint) ended with error \(result)")
            }
            // The file system must outlive every callback, which ends with the loop.
            withExtendedLifetime(filesystem) {}
            served.deliver(result)
        }
        thread.name = "convoy-backupfs"
        thread.start()
        return served
    }

    /// Unmounts (lazily if busy) and waits for the serving thread to finish. Idempotent.
    ///
    /// A lazily detached file system lives on while files on it are open (or a mount such as an overlay uses
    /// it), and so would the serving thread: then the FUSE connection is aborted, the thread ends, and those
    /// files' further reads fail with ENOTCONN.
    public func unmount() throws(ConvoyError) {
        if served.value != nil { return }
        var busy = false
        // Unmount only the mount made here: after an outside detach the path may hold someone else's.
        if kernelMount == nil || MountInfo.mount(at: canonicalPath) == kernelMount, umount2(canonicalPath, 0) != 0 {
            switch errno {
            case EBUSY:
                guard umount2(canonicalPath, Int32(MNT_DETACH)) == 0 || errno == EINVAL else { throw failure("detach") }
                busy = true
            case EINVAL: break  // no longer a mount point
            default: throw failure("unmount")
            }
        }
        // Also when detached from outside (then no busy flag): a short wait tells whether files still hold it.
        if busy || served.wait(timeout: .now() + 1) == nil, let kernelMount {
            _ = MountTable.abortConnection(MountTable.connection(of: kernelMount))
        }
        guard served.wait(timeout: .now() + 30) != nil else {
            throw ConvoyError(.driverFailure, "the FUSE loop of \(filesystem.label) at \(mountpoint) "
                + "did not stop within 30 s of its unmount: "
                + "a block fetch may be hanging; it stops when that fetch ends")
        }
    }

    private func failure(_ operation: String) -> ConvoyError {
        ConvoyError(.driverFailure, "cannot \(operation) \(mountpoint): \(String(cString: strerror(errno)))")
    }

    /// False once the serving thread has ended.
    var isServing: Bool { served.value == nil }

    /// Bytes of block data fetched from the store so far (for tests and progress): plain bytes of verified
    /// blocks, disk-cache hits excluded.
    public var bytesFetched: UInt64 { filesystem.cache.source.bytesFetched }

    /// Makes block `hash` local: fetched, verified and kept in the mount's disk cache (which it must have), so
    /// that reads of it no longer need the store. Runs on the caller's executor (hydration runs it at a low
    /// priority, so that the mount's readers come first). Returns whether it had to fetch the block.
    @discardableResult
    public func keepOnDisk(_ hash: String, checksum: BlockChecksum? = nil) async throws(ConvoyError) -> Bool {
        try await filesystem.cache.source.keepOnDisk(hash, checksum: checksum)
    }

    /// True when `path` is a mount point whose filesystem no longer answers ("Transport endpoint is not
    /// connected", ENOTCONN) — what a crashed daemon leaves behind.
    public static func isDeadMount(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) != 0, errno == ENOTCONN else { return false }
        return MountInfo.mount(at: MountTable.canonical(path)) != nil
    }

    /// Detaches whatever is mounted at `path` (umount2 MNT_DETACH); true when something was unmounted.
    @discardableResult public static func detach(_ path: String) -> Bool {
        umount2(path, Int32(MNT_DETACH)) == 0
    }

    // MARK: libfuse

    private static func checkMountpoint(_ path: String) throws(ConvoyError) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOTCONN {
                throw ConvoyError(.conflict, "\(path) is a dead FUSE mount (its daemon is gone): detach it first")
            }
            throw ConvoyError(.notFound, "mount point \(path) does not exist: create an empty directory there first")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw .invalid("mount point \(path) is not a directory") }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path), names.isEmpty else {
            throw ConvoyError(.conflict,
                              "mount point \(path) is not an empty directory; mounting would hide its content")
        }
    }

    /// A libfuse session for the file system, not mounted yet.
    static func newSession(_ filesystem: BackupFilesystem, options: String) -> OpaquePointer? {
        var arguments = ["convoy-backup", "-o", options].map { (argument: String) in strdup(argument) }
        defer { arguments.forEach { free($0) } }
        var operations = FuseOperations.make()
        return arguments.withUnsafeMutableBufferPointer { argv in
            var parsed = fuse_args(argc: Int32(argv.count), argv: argv.baseAddress, allocated: 0)
            // The user data: the serving thread keeps the file system alive as long as callbacks may run.
            let session = fuse_session_new(&parsed, &operations, MemoryLayout<fuse_lowlevel_ops>.size,
                                           Unmanaged.passUnretained(filesystem).toOpaque())
            fuse_opt_free_args(&parsed)
            return session
        }
    }
}

/// libfuse's `struct fuse_session *`. Created by `mount`, then used by the serving thread alone, which destroys it.
struct FuseSession: @unchecked Sendable {
    let pointer: OpaquePointer

    /// Libfuse threads at most: each may wait on a block fetch, so more of them means more fetches in flight.
    static let maxThreads: UInt32 = 16

    /// Runs libfuse's multithreaded loop until the mount goes away, then releases the handle.
    func serve() -> Int32 {
        let config = fuse_loop_cfg_create()
        fuse_loop_cfg_set_max_threads(config, Self.maxThreads)
        let result = fuse_session_loop_mt(pointer, config)
        fuse_loop_cfg_destroy(config)
        // Unmounts only if the connection is still alive (the loop failed); otherwise just closes the device.
        fuse_session_unmount(pointer)
        fuse_session_destroy(pointer)
        return result
    }
}
