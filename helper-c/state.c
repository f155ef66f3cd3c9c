#define _GNU_SOURCE
#include "state.h"
#include "bpmlog.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STATE_VERSION "bpm-state 2"

int state_enter(const struct plan *p, struct state *out, int stopping) {
    /* Stop always stops: a bpm.log the job spoiled, or no room for a lock file, does not fail it. */
    bpmlog_open(p, stopping ? BPMLOG_WANTED : BPMLOG_REQUIRED);
    if (p->job.lock) lock_job(p->job.lock, stopping);
    return state_read(p, out);
}

int state_read(const struct plan *p, struct state *out) {
    memset(out, 0, sizeof *out);
    if (!p->job.state) return 0;
    int fd = open(p->job.state, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    if (strncmp(buf, STATE_VERSION "\n", strlen(STATE_VERSION) + 1)) return 0;
    unsigned long long pid = 0, start = 0;
    int have = 0;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *space = strchr(line, ' ');
        if (!space) continue;
        *space = '\0';
        const char *value = space + 1;
        if (!strcmp(line, "pid") && !parse_u64(value, &pid) && pid > 0 && pid < 0x7fffffff) have |= 1;
        else if (!strcmp(line, "start-time") && !parse_u64(value, &start)) have |= 2;
        else if (!strcmp(line, "shutdown-signal") && strlen(value) < sizeof out->shutdown_signal) strcpy(out->shutdown_signal, value);
        else if (!strcmp(line, "shutdown-timeout-ms") && parse_u64(value, &out->shutdown_timeout_ms)) out->shutdown_timeout_ms = 0;
    }
    if (have != 3) return 0;
    out->pid = (pid_t)pid;
    out->start_time = start;
    if (!out->shutdown_signal[0]) strcpy(out->shutdown_signal, "TERM");
    return 1;
}

int state_running(const struct state *s) {
    unsigned long long now;
    char st;
    /* A zombie is gone: only nobody has reaped it yet. */
    return s->pid > 0 && proc_stat(AT_FDCWD, s->pid, &st, &now) == 0 && now == s->start_time && st != 'Z' && st != 'X';
}

int state_write(const struct plan *p, pid_t pid, unsigned long long start_time) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char text[256], timeout[48] = "";
    if (p->job.shutdown_timeout_ms) snprintf(timeout, sizeof timeout, "shutdown-timeout-ms %llu\n", p->job.shutdown_timeout_ms);
    int n = snprintf(text, sizeof text, STATE_VERSION "\npid %d\nstart-time %llu\nstarted-at %lld\nshutdown-signal %s\n%s", (int)pid,
                     start_time, (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                     p->job.shutdown_signal ? p->job.shutdown_signal : "TERM", timeout);
    if (n < 0 || (size_t)n >= sizeof text) { errno = EOVERFLOW; return -1; }
    if (write_file_at(p->job.state, text, (size_t)n, 0600)) return -1;
    /* monit reads the pid with no trailing newline. */
    n = snprintf(text, sizeof text, "%d", (int)pid);
    return write_file_at(p->job.pidfile, text, (size_t)n, 0644);
}

void state_clear(const struct plan *p) {
    if (p->job.pidfile) unlink(p->job.pidfile);
    if (p->job.state) unlink(p->job.state);
}
