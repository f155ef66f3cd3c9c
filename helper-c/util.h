/* Shared helpers: fatal errors reported as one readable line, checked I/O. */
#ifndef BPM_UTIL_H
#define BPM_UTIL_H
#include <stddef.h>
#include <sys/types.h>

#define HELPER_VERSION "bpm-helper 1"
#define PLAN_VERSION "BPMPLAN1"

/* Where die() sends its message besides stderr (the CLI's report pipe), or -1. */
extern int report_fd;

/* Print "error: <what>: <strerror(errno)>" to the report pipe and exit. */
__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);
/* Same, without errno. */
__attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...);

int write_all(int fd, const void *buf, size_t len);
/* Reads exactly len bytes; returns 0, or -1 on error or early EOF. */
int read_exact(int fd, void *buf, size_t len);
int write_str(int fd, const char *s);
/* Parses a decimal unsigned number; the whole string must be digits. */
int parse_u64(const char *s, unsigned long long *out);
/* Start time of pid (field 22 of its stat, clock ticks since boot), looked
 * up in the procfs open at procfd, or in /proc when procfd is AT_FDCWD. */
int proc_start_time(int procfd, pid_t pid, unsigned long long *out);
/* Where the CLI hands `launch lock` and `stop lock` the job's open lock file. */
#define LOCK_FD 5
/* Takes an exclusive flock on fd, a lock file the CLI opened, then closes fd.
 * The lock belongs to the open file, which the CLI holds too: it stays locked
 * until the CLI is done or dies, and nothing we start keeps it. */
void take_lock(int fd);
/* Opens (creating) a lock file in a root-only directory and flocks it;
 * returns the descriptor, which holds the lock until closed. */
int lock_path(const char *path);
/* Closes every descriptor from fd up (close_range, or /proc/self/fd where
 * the kernel lacks it); with cloexec, marks them close-on-exec instead. */
void close_from(int fd);
void cloexec_from(int fd);
/* Moves the calling process into a cgroup (the path of its cgroup.procs). */
void join_cgroup(const char *procs);
#endif
