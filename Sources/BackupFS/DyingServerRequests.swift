import CFuse
#if canImport(Glibc)
import Glibc
#endif

/// What a FUSE server that is dying asked of its own connections. A daemon killed while one of its threads waits
/// on a mount it serves itself (a lazy volume's hydration changes a file's owner through the overlay, which copies
/// the file up and lists its xattrs on the backup mount) cannot finish dying: its serving thread read the request
/// and is gone, and the kernel waits for the answer without end because the FUSE keeper keeps the connection open.
/// Until that thread returns, the process keeps its descriptors, its lock among them, and no daemon can start.
/// The keeper, seeing its daemon die, answers such requests with EIO here; the thread then exits with the rest.
public enum DyingServerRequests {
    /// Opcodes that take no answer: FORGET, INTERRUPT, BATCH_FORGET.
    static let unanswered: Set<UInt32> = [2, 36, 42]
    /// Larger than any request a read-only mount is sent (the kernel fails a request longer than the read buffer).
    static let bufferSize = (1 << 20) + (64 << 10)

    /// Has the kernel queue again every request of the connection on `device` that was read and not answered
    /// (FUSE_NOTIFY_RESEND, Linux 6.9), then reads what is queued and answers with EIO each request a thread of
    /// `process` made. Requests of other processes are read and left unanswered: the next daemon has the kernel
    /// send them again when it adopts the connection (`BackupMount.adopt`). Returns how many it answered, or nil
    /// when the kernel cannot resend.
    public static func answer(madeBy process: pid_t, on device: Int32) -> Int? {
        guard convoy_fuse_notify_resend(device) == 0 else { return nil }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        var answered = 0
        // Bounded: a busy container's requests keep coming; another round follows a second later.
        for _ in 0..<4096 {
            var ready = pollfd(fd: device, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, 0) == 1, ready.revents & Int16(POLLIN) != 0 else { break }
            var header = convoy_fuse_in_header()
            guard convoy_fuse_read_request(device, buffer, bufferSize, &header) > 0 else { break }
            guard !unanswered.contains(header.opcode), header.pid > 0,
                  access("/proc/\(process)/task/\(header.pid)", F_OK) == 0 else { continue }
            if convoy_fuse_reply_error(device, header.unique, EIO) == 0 { answered += 1 }
        }
        return answered
    }

    /// Whether `process` is exiting while some of its threads have not: its main thread is a zombie. A running
    /// daemon's main thread never exits before the others.
    public static func isDying(_ process: pid_t) -> Bool {
        let fd = open("/proc/\(process)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 512)
        let count = read(fd, &bytes, bytes.count)
        guard count > 0 else { return false }
        // "pid (comm) S ...": the state follows the last ')' (a command name may hold one).
        guard let paren = bytes[..<count].lastIndex(of: UInt8(ascii: ")")), paren + 2 < count else { return false }
        return bytes[paren + 2] == UInt8(ascii: "Z") || bytes[paren + 2] == UInt8(ascii: "X")
    }
}
