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
// Raise the size above which malloc maps fresh pages (and the heap-trim threshold), so large buffers are reused.
static inline void convoy_tune_malloc(int mmapThreshold, int trimThreshold) {
    mallopt(M_MMAP_THRESHOLD, mmapThreshold);
    mallopt(M_TRIM_THRESHOLD, trimThreshold);
}
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
#endif
