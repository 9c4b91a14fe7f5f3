#ifndef CONVOY_CLINUX_H
#define CONVOY_CLINUX_H
// Linux calls that Glibc's Swift overlay does not expose (they need _GNU_SOURCE or live in sys/xattr.h).
#include <fcntl.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <sys/sysmacros.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <spawn.h>
#include <signal.h>
#include <errno.h>

static inline off_t convoy_seek_data(int fd, off_t offset) { return lseek(fd, offset, 3 /* SEEK_DATA */); }
static inline off_t convoy_seek_hole(int fd, off_t offset) { return lseek(fd, offset, 4 /* SEEK_HOLE */); }
static inline ssize_t convoy_llistxattr(const char *path, char *list, size_t size) { return llistxattr(path, list, size); }
static inline ssize_t convoy_lgetxattr(const char *path, const char *name, void *value, size_t size) {
    return lgetxattr(path, name, value, size);
}
static inline int convoy_lsetxattr(const char *path, const char *name, const void *value, size_t size) {
    return lsetxattr(path, name, value, size, 0);
}
static inline int convoy_lremovexattr(const char *path, const char *name) { return lremovexattr(path, name); }
// O_DIRECT is only defined with _GNU_SOURCE; glibc's own name for it is always there.
static const int convoy_O_DIRECT = __O_DIRECT;
#include <malloc.h>
// Raise the size above which malloc maps fresh pages (and the heap-trim threshold), so large buffers are reused;
// cap the arenas (glibc makes up to 8 per core, each keeping what was freed in it).
static inline void convoy_tune_malloc(int mmapThreshold, int trimThreshold, int arenas) {
    mallopt(M_MMAP_THRESHOLD, mmapThreshold);
    mallopt(M_TRIM_THRESHOLD, trimThreshold);
    mallopt(M_ARENA_MAX, arenas);
}
// Gives the pages of freed memory in every arena back to the kernel.
static inline void convoy_release_free_memory(void) { malloc_trim(0); }
// Declared here rather than through _GNU_SOURCE, which would change how glibc's headers define types that other
// modules (Dispatch, Glibc) also see, and break the module build.
extern int syncfs(int fd);
// Swaps two names atomically (renameat2 with RENAME_EXCHANGE): tests use it to race a tree walk.
extern int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags);
static inline int convoy_exchange(const char *a, const char *b) { return renameat2(AT_FDCWD, a, AT_FDCWD, b, 2); }
static inline int convoy_syncfs(int fd) { return syncfs(fd); }
// Starts writing a file's dirty pages to disk without waiting for the writes (SYNC_FILE_RANGE_WRITE); it may
// still block while the device's queue is full.
extern int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags);
static inline int convoy_start_writeback(int fd) { return sync_file_range(fd, 0, 0, 2 /* SYNC_FILE_RANGE_WRITE */); }
// Pages of `fd` in the page cache, from offset 0 to the end (cachestat(2), Linux 6.5; declared here because
// Debian 12's headers predate it). Returns -1 with errno ENOSYS on older kernels.
static inline long long convoy_cached_pages(int fd) {
    struct { unsigned long long off, len; } range = { 0, 0 };
    struct { unsigned long long nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted; } stat;
    if (syscall(451 /* __NR_cachestat on x86_64 and arm64 */, fd, &range, &stat, 0) != 0) return -1;
    return (long long)stat.nr_cache;
}
// Lowers the calling thread's priority (Linux: nice values are per thread, addressed by thread id).
static inline int convoy_set_thread_niceness(int niceness) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), niceness);
}
// Opens `path` beneath the directory `dirfd` following no symlink in any component and never leaving it
// (openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, Linux 5.6): one call where a
// walk component by component would take one per directory. Declared here because glibc has no wrapper. Returns
// -1 with errno ENOSYS (or EPERM under some seccomp profiles) where the kernel does not offer it.
static inline int convoy_open_beneath(int dirfd, const char *path, int flags) {
    struct { unsigned long long flags, mode, resolve; } how = { (unsigned int)flags, 0, 0x08 | 0x04 | 0x02 };
#ifdef SYS_openat2
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
#else
    return (int)syscall(437 /* __NR_openat2, the same number on every architecture */, dirfd, path, &how, sizeof how);
#endif
}
// GNU extensions, declared here: defining _GNU_SOURCE in this module would change system types (fd_set) against
// the other modules that include the same headers.
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
#define CONVOY_POSIX_SPAWN_SETSID 0x80
#define CONVOY_MSG_CMSG_CLOEXEC 0x40000000
// One message with an optional file descriptor (SCM_RIGHTS) on a SOCK_SEQPACKET socket: the FUSE keeper holds
// the /dev/fuse descriptors of lazy volumes across daemon restarts. `fd` -1: none. Returns bytes sent or -1.
static inline ssize_t convoy_send_with_fd(int sock, const void *data, size_t length, int fd) {
    struct iovec part = { (void *)data, length };
    union { char bytes[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct msghdr message;
    memset(&message, 0, sizeof message);
    memset(&control, 0, sizeof control);
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    if (fd >= 0) {
        message.msg_control = control.bytes;
        message.msg_controllen = sizeof control.bytes;
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(header), &fd, sizeof(int));
    }
    return sendmsg(sock, &message, MSG_NOSIGNAL);
}
// Receives one message and the descriptor it carries (*fd -1 when none; close-on-exec). Returns bytes or -1; 0 when
// the peer closed. A message longer than `capacity` is cut (MSG_TRUNC): callers size it for their protocol.
static inline ssize_t convoy_receive_with_fd(int sock, void *data, size_t capacity, int *fd) {
    struct iovec part = { data, capacity };
    union { char bytes[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    message.msg_control = control.bytes;
    message.msg_controllen = sizeof control.bytes;
    *fd = -1;
    ssize_t received = recvmsg(sock, &message, CONVOY_MSG_CMSG_CLOEXEC);
    if (received < 0) return received;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS) {
            memcpy(fd, CMSG_DATA(header), sizeof(int));
        }
    }
    return received;
}
// The pid of the process at the other end of a UNIX socket (SO_PEERCRED, as the kernel recorded it at connect), or
// -1 with errno. struct ucred needs _GNU_SOURCE, so its layout is spelled here.
static inline pid_t convoy_socket_peer_pid(int sock) {
    struct { pid_t pid; uid_t uid; gid_t gid; } credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    return credentials.pid;
}
// Starts `argv[0]` in a session of its own (no terminal's or group's signal reaches it), with standard input and
// output on /dev/null, standard error appended to `log`, and no other descriptor of this process (the daemon's
// /dev/fuse descriptors must not leak into it). Returns its pid, or -1 with errno.
static inline pid_t convoy_spawn_detached(char *const argv[], const char *log) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    if (posix_spawn_file_actions_init(&actions) != 0) return -1;
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, log, O_WRONLY | O_APPEND | O_CREAT, 0600);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setflags(&attributes, CONVOY_POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    pid_t pid = -1;
    extern char **environ;
    int error = posix_spawn(&pid, argv[0], &actions, &attributes, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (error != 0) { errno = error; return -1; }
    return pid;
}
#endif
