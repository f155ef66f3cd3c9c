/* The exit record, "code signal epoch-ms oom-kills\n" (code -1 when killed,
 * signal 0 when it exited, oom-kills -1 when unknown; read by
 * src/runtime/state.ts's readExit): its one writer, used by the container's
 * init and by the reaper it becomes. The OOM count is read while the init
 * still holds the job's cgroup open: where systemd manages it, the cgroup
 * goes the moment the init exits. Header-only, so that the reaper, a
 * program of its own, stays without stdio. */
#ifndef BPM_EXITRECORD_H
#define BPM_EXITRECORD_H
#include <errno.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Appends n in decimal. */
static inline char *exit_record_number(char *at, long long n) {
    char digits[24];
    int len = 0;
    unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
    do digits[len++] = (char)('0' + u % 10);
    while ((u /= 10) && len < 20);
    if (n < 0) *at++ = '-';
    while (len) *at++ = digits[--len];
    return at;
}

/* The "oom_kill N" count of the job's memory.events (v2) or
 * memory.oom_control (v1), open at oom_fd; -1 if unknown. */
static inline long long exit_record_oom_kills(int oom_fd) {
    char buf[2048];
    ssize_t n;
    if (oom_fd < 0) return -1;
    while ((n = pread(oom_fd, buf, sizeof buf - 1, 0)) < 0 && errno == EINTR) {}
    if (n <= 0) return -1;
    buf[n] = '\0';
    static const char key[] = "oom_kill ";
    for (char *line = buf; *line;) {
        int match = 1;
        for (unsigned i = 0; i < sizeof key - 1; i++)
            if (line[i] != key[i]) { match = 0; break; }
        if (match) {
            long long v = 0;
            char *d = line + sizeof key - 1;
            if (*d < '0' || *d > '9') return -1;
            for (; *d >= '0' && *d <= '9' && v < 1000000000000LL; d++) v = v * 10 + (*d - '0');
            return v;
        }
        while (*line && *line != '\n') line++;
        if (*line) line++;
    }
    return -1;
}

/* Writes how the job ended (w, as waitpid gave it) to fd, with the OOM
 * kills counted at oom_fd; fd < 0: no record. */
static inline void exit_record_write(int fd, int w, int oom_fd) {
    if (fd < 0) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char line[80], *p = line;
    p = exit_record_number(p, WIFEXITED(w) ? WEXITSTATUS(w) : -1);
    *p++ = ' ';
    p = exit_record_number(p, WIFSIGNALED(w) ? WTERMSIG(w) : 0);
    *p++ = ' ';
    p = exit_record_number(p, (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    *p++ = ' ';
    p = exit_record_number(p, exit_record_oom_kills(oom_fd));
    *p++ = '\n';
    while (write(fd, line, (size_t)(p - line)) < 0 && errno == EINTR) {}
}
#endif
