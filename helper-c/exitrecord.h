/* The exit record, "code signal epoch-ms\n" (code -1 when killed, signal 0
 * when it exited; read by src/runtime/state.ts's readExit): its one writer,
 * used by the container's init and by the reaper it becomes. Header-only, so
 * that the reaper, a program of its own, stays without stdio. */
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

/* Writes how the job ended (w, as waitpid gave it) to fd; fd < 0: no record. */
static inline void exit_record_write(int fd, int w) {
    if (fd < 0) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char line[80], *p = line;
    p = exit_record_number(p, WIFEXITED(w) ? WEXITSTATUS(w) : -1);
    *p++ = ' ';
    p = exit_record_number(p, WIFSIGNALED(w) ? WTERMSIG(w) : 0);
    *p++ = ' ';
    p = exit_record_number(p, (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    *p++ = '\n';
    while (write(fd, line, (size_t)(p - line)) < 0 && errno == EINTR) {}
}
#endif
