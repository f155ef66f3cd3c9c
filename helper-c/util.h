/* Shared helpers: fatal errors reported as one readable line, checked I/O. */
#ifndef BPM_UTIL_H
#define BPM_UTIL_H
#include <stddef.h>
#include <sys/types.h>


/* Where die() sends its message besides stderr (the CLI's report pipe), or -1. */
extern int report_fd;
/* If set, die() and fail() call it with their message first (once): a
 * command that made something undoes it and says so its own way. It must
 * not return. Children reset it after fork. */
extern void (*on_fatal)(const char *msg);

/* Print "error: <what>: <strerror(errno)>" to the report pipe and exit. */
__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);
/* Same, without errno. */
__attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...);

int write_all(int fd, const void *buf, size_t len);
/* Reads exactly len bytes; returns 0, or -1 on error or early EOF. */
int read_exact(int fd, void *buf, size_t len);
int write_str(int fd, const char *s);
/* Formats one line (fmt ends with its newline) and writes it whole, in one
 * write(2): fprintf to musl's unbuffered stderr writes a line in pieces, and
 * whoever reads it (bpm's caller, a test) could see half of it. A line too
 * long for the buffer is cut, its newline kept. Returns 0, or -1 with errno. */
__attribute__((format(printf, 2, 3))) int write_line(int fd, const char *fmt, ...);
/* Parses a decimal unsigned number; the whole string must be digits. */
int parse_u64(const char *s, unsigned long long *out);
/* Start time of pid (field 22 of its stat, clock ticks since boot), looked
 * up in the procfs open at procfd, or in /proc when procfd is AT_FDCWD. */
int proc_start_time(int procfd, pid_t pid, unsigned long long *out);
/* The same, and the process's state letter (R, S, Z...). */
int proc_stat(int procfd, pid_t pid, char *state, unsigned long long *start);
/* Opens (creating) a lock file in a root-only directory and flocks it;
 * returns the descriptor, which holds the lock until closed. optional (stop):
 * -1 when the file is missing and the disk has no room to make it. */
int lock_path(const char *path, int optional);
/* The job's lock, held by the helper for the whole command (lock_fd); a
 * process it forks that does not exec must close lock_fd, or it would keep
 * the job locked. */
void lock_job(const char *path, int optional);
extern int lock_fd;
/* Closes every descriptor from fd up (close_range, or /proc/self/fd where
 * the kernel lacks it); with cloexec, marks them close-on-exec instead. */
void close_from(int fd);
void cloexec_from(int fd);
/* Moves the calling process into a cgroup (the path of its cgroup.procs). */
void join_cgroup(const char *procs);
/* JSON string content for in (quotes, backslashes, control characters
 * escaped), cut to fit cap; returns its length. */
size_t json_escape(char *out, size_t cap, const char *in);
/* Writes a whole file or nothing: a temporary file beside it, then rename;
 * never through a symlink. Returns 0, or -1 with errno. */
int write_file_at(const char *path, const char *data, size_t len, mode_t mode);
#endif
