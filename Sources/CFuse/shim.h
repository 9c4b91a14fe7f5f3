#ifndef CONVOY_CFUSE_SHIM_H
#define CONVOY_CFUSE_SHIM_H
// libfuse3's API level must be fixed before its headers are read; 312 makes fuse_loop_mt and the
// fuse_loop_cfg_* functions real symbols rather than function-like macros (which Swift cannot import).
#define FUSE_USE_VERSION 312
#include <fuse3/fuse.h>
#include <fuse3/fuse_lowlevel.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

// Serving a FUSE connection that another process (an earlier daemon) initialised, on its /dev/fuse descriptor
// (docs/design.md, "Lazy volumes across a restart"). The kernel's side of FUSE_INIT happened once, long ago; a
// fresh libfuse session still waits for one and would answer every other request with EIO. So it is given one:
// an INIT made here, as the kernel would send it, whose reply goes to a request id the kernel never used (its ids
// are even) and is dropped with ENOENT, which libfuse ignores. The layouts are the kernel's ABI (linux/fuse.h),
// written out because that header and libfuse's own clash.
struct convoy_fuse_in_header {
    uint32_t len, opcode;
    uint64_t unique, nodeid;
    uint32_t uid, gid, pid;
    uint16_t extlen, padding;
};
struct convoy_fuse_init_in { uint32_t major, minor, max_readahead, flags, flags2, unused[11]; };
static inline void convoy_fuse_adopt_init(struct fuse_session *session, uint32_t max_readahead) {
    struct { struct convoy_fuse_in_header header; struct convoy_fuse_init_in init; } message;
    memset(&message, 0, sizeof message);
    message.header.len = sizeof message;
    message.header.opcode = 26;  // FUSE_INIT
    message.header.unique = 1;
    message.init.major = 7;
    message.init.minor = 31;
    message.init.max_readahead = max_readahead;
    // FUSE_ASYNC_READ, FUSE_BIG_WRITES, FUSE_DO_READDIRPLUS, FUSE_READDIRPLUS_AUTO, FUSE_PARALLEL_DIROPS, and
    // FUSE_MAX_PAGES: without it libfuse shrinks its buffer below the kernel's max_write of the first INIT, and
    // every read of the device fails with EINVAL.
    message.init.flags = (1u << 0) | (1u << 5) | (1u << 13) | (1u << 14) | (1u << 18) | (1u << 22);
    struct fuse_buf buffer;
    memset(&buffer, 0, sizeof buffer);
    buffer.size = sizeof message;
    buffer.mem = &message;
    buffer.fd = -1;
    fuse_session_process_buf(session, &buffer);
}
// Reads one request from a FUSE device into `buffer` (at least 8 KiB, as the kernel demands) and its header into
// `header` (its pid is the thread that made it). Returns the bytes read, or -errno.
static inline ssize_t convoy_fuse_read_request(int fd, void *buffer, size_t size,
                                               struct convoy_fuse_in_header *header) {
    ssize_t got = read(fd, buffer, size);
    if (got < 0) return -errno;
    if ((size_t)got < sizeof *header) return -EPROTO;
    memcpy(header, buffer, sizeof *header);
    return got;
}
// Writes a bare fuse_out_header (a reply without data, or a notification when `unique` is 0). 0, or -errno.
static inline int convoy_fuse_write_header(int fd, int32_t error, uint64_t unique) {
    struct { uint32_t len; int32_t error; uint64_t unique; } header = { 16, error, unique };
    return write(fd, &header, sizeof header) == (ssize_t)sizeof header ? 0 : -errno;
}
// Answers FUSE request `unique` with `-error` and no data. Returns 0 or -errno.
static inline int convoy_fuse_reply_error(int fd, uint64_t unique, int error) {
    return convoy_fuse_write_header(fd, -error, unique);
}
// FUSE_NOTIFY_RESEND (Linux 6.9): the kernel queues again every request a server read and never answered (those
// the earlier daemon held when it stopped or died), so they reach this one. 0, or -errno (EINVAL: an older kernel).
static inline int convoy_fuse_notify_resend(int fd) { return convoy_fuse_write_header(fd, 7, 0); }
#endif
