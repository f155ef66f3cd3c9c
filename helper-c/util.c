#define _GNU_SOURCE
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int report_fd = -1;
void (*on_fatal)(const char *msg);

static __attribute__((noreturn)) void vreport(int with_errno, const char *fmt, va_list ap) {
    char msg[1024];
    int saved = errno;
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof msg) n = sizeof msg - 1;
    if (with_errno) {
        int m = snprintf(msg + n, sizeof msg - (size_t)n, ": %s", strerror(saved));
        if (m > 0) n += m;
        if ((size_t)n >= sizeof msg) n = sizeof msg - 1;
    }
    if (on_fatal) {
        void (*hook)(const char *) = on_fatal;
        on_fatal = NULL; /* a failure while cleaning up ends here, below */
        msg[n] = '\0';
        hook(msg);
    }
    char line[1100];
    int len = snprintf(line, sizeof line, "error: %.*s\n", n, msg);
    if (len < 0) _exit(125);
    if ((size_t)len >= sizeof line) len = sizeof line - 1;
    if (report_fd >= 0) write_all(report_fd, line, (size_t)len);
    else write_all(2, line, (size_t)len);
    _exit(125);
}

void die(const char *fmt, ...) { va_list ap; va_start(ap, fmt); vreport(1, fmt, ap); }
void fail(const char *fmt, ...) { va_list ap; va_start(ap, fmt); vreport(0, fmt, ap); }

int write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int write_str(int fd, const char *s) { return write_all(fd, s, strlen(s)); }

int write_line(int fd, const char *fmt, ...) {
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    if ((size_t)n >= sizeof line) {
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }
    return write_all(fd, line, (size_t)n);
}

int read_exact(int fd, void *buf, size_t len) {
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int parse_u64(const char *s, unsigned long long *out) {
    if (!s || !*s || strlen(s) > 20) return -1;
    unsigned long long v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9') return -1;
        unsigned d = (unsigned)(*c - '0');
        if (v > (~0ULL - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int proc_stat(int procfd, pid_t pid, char *state, unsigned long long *start) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "%s%d/stat", procfd == AT_FDCWD ? "/proc/" : "", (int)pid);
    int fd = openat(procfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2]) return -1;
    if (state) *state = p[2];
    p++;
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p) return -1;
    }
    char *end = strchr(p + 1, ' ');
    if (end) *end = '\0';
    return parse_u64(p + 1, start);
}

int proc_start_time(int procfd, pid_t pid, unsigned long long *out) {
    return proc_stat(procfd, pid, NULL, out);
}

void join_cgroup(const char *procs) {
    int fd = open(procs, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) die("open %s", procs);
    /* "0": the writer itself, whatever its pid in a namespace of its own. */
    if (write_all(fd, "0", 1)) die("join cgroup %s", procs);
    close(fd);
}

int lock_fd = -1;

int lock_path(const char *path, int optional) {
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT) {
        /* The locks' directory, in bpm's own root-only one, on first use. */
        char dir[4096];
        const char *slash = strrchr(path, '/');
        if (slash && (size_t)(slash - path) < sizeof dir) {
            memcpy(dir, path, (size_t)(slash - path));
            dir[slash - path] = '\0';
            if (mkdir(dir, 0700) && errno != EEXIST) {
                if (optional && (errno == ENOSPC || errno == EDQUOT)) return -1;
                die("create %s", dir);
            }
        }
        fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
    /* No lock file and no room to make one: no start made it, so none holds it. */
    if (fd < 0 && optional && (errno == ENOSPC || errno == EDQUOT)) return -1;
    if (fd < 0) die("open lock %s", path);
    while (flock(fd, LOCK_EX)) {
        if (errno != EINTR) die("lock %s", path);
    }
    return fd;
}

void lock_job(const char *path, int optional) {
    lock_fd = lock_path(path, optional);
}

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static void each_fd_from(int low, int cloexec) {
    if (syscall(SYS_close_range, (unsigned)low, ~0U, cloexec ? CLOSE_RANGE_CLOEXEC : 0) == 0) return;
    DIR *d = opendir("/proc/self/fd");
    if (!d) die("list descriptors");
    int self = dirfd(d);
    for (struct dirent *e; (e = readdir(d));) {
        unsigned long long n;
        if (parse_u64(e->d_name, &n) || n < (unsigned)low || (int)n == self) continue;
        if (cloexec) fcntl((int)n, F_SETFD, FD_CLOEXEC);
        else close((int)n);
    }
    closedir(d);
}

void close_from(int fd) { each_fd_from(fd, 0); }
void cloexec_from(int fd) { each_fd_from(fd, 1); }

size_t json_escape(char *out, size_t cap, const char *in) {
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)in; *c && n + 7 < cap; c++) {
        if (*c == '"' || *c == '\\') { out[n++] = '\\'; out[n++] = (char)*c; }
        else if (*c < 0x20) { out[n++] = '\\'; out[n++] = 'u'; out[n++] = '0'; out[n++] = '0'; out[n++] = hex[*c >> 4]; out[n++] = hex[*c & 15]; }
        else out[n++] = (char)*c;
    }
    if (cap) out[n] = '\0';
    return n;
}

int write_file_at(const char *path, const char *data, size_t len, mode_t mode) {
    char tmp[4200];
    int n = snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) { errno = ENAMETOOLONG; return -1; }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) return -1;
    int bad = write_all(fd, data, len) || fchmod(fd, mode);
    int saved = errno;
    if (close(fd)) bad = 1;
    if (!bad && !rename(tmp, path)) return 0;
    if (bad) errno = saved;
    saved = errno;
    unlink(tmp);
    errno = saved;
    return -1;
}
