#define _GNU_SOURCE
#include "state.h"
#include "bpmlog.h"
#include "systemd.h"
#include "util.h"
#include "wire.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int state_enter(const struct job_plan *j, struct state *out, int stopping) {
    /* Stop always stops: a bpm.log the job spoiled, or no room for a lock file, does not fail it. */
    bpmlog_open(j, stopping ? BPMLOG_WANTED : BPMLOG_REQUIRED);
    if (j->lock) lock_job(j->lock, stopping);
    return state_read(j, out);
}

/* This boot's id, once; "" if the kernel does not say. */
static const char *boot_id(void) {
    static char id[40];
    static int read_once;
    if (!read_once) {
        read_once = 1;
        int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, id, sizeof id - 1);
        if (fd >= 0) close(fd);
        id[n > 0 ? n : 0] = '\0';
        id[strcspn(id, "\n")] = '\0';
    }
    return id;
}

/* 0-15 for a hex digit, else -1 (as the TS reader: no sign, no space). */
static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Undoes the record's %XX escapes in place. */
static void unescape(char *s) {
    char *w = s;
    for (const char *r = s; *r; r++) {
        int hi = r[0] == '%' ? hex_digit(r[1]) : -1, lo = hi >= 0 ? hex_digit(r[2]) : -1;
        if (lo >= 0) { *w++ = (char)(hi << 4 | lo); r += 2; }
        else *w++ = *r;
    }
    *w = '\0';
}

/* The whole file, NUL-terminated, in memory that stays (the strings of a
 * state point into it); NULL if missing, a symlink, not regular or larger
 * than MAX_RECORD_BYTES (wire.ts: the TS reader's bound too). */
static char *slurp(const char *path) {
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && (unsigned long long)st.st_size <= MAX_RECORD_BYTES) {
        buf = malloc((size_t)st.st_size + 1);
        if (buf && read_exact(fd, buf, (size_t)st.st_size) == 0) buf[st.st_size] = '\0';
        else { free(buf); buf = NULL; }
    }
    close(fd);
    return buf;
}

int state_read_file(const char *path, struct state *out) {
    memset(out, 0, sizeof *out);
    char *buf = path ? slurp(path) : NULL;
    if (!buf) return 0;
    char *save = NULL, *line = strtok_r(buf, "\n", &save);
    if (line && !strcmp(line, RECORD_VERSION)) out->version = 3;
    else if (line && !strcmp(line, LEGACY_RECORD_VERSION)) out->version = 2;
    else { free(buf); return 0; }
    unsigned long long pid = 0, start = 0;
    int have = 0;
    struct cgroup_plan *cg = &out->cg;
    for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *space = strchr(line, ' ');
        if (!space) continue;
        *space = '\0';
        char *value = space + 1;
        unescape(value);
        if (!strcmp(line, RECORD_KEY_PID) && !parse_u64(value, &pid) && pid > 0 && pid < 0x7fffffff) have |= 1;
        else if (!strcmp(line, RECORD_KEY_START_TIME) && !parse_u64(value, &start)) have |= 2;
        else if (!strcmp(line, RECORD_KEY_BOOT_ID) && strlen(value) < sizeof out->boot_id) strcpy(out->boot_id, value);
        else if (!strcmp(line, RECORD_KEY_SHUTDOWN_SIGNAL) && strlen(value) < sizeof out->shutdown_signal) strcpy(out->shutdown_signal, value);
        else if (!strcmp(line, RECORD_KEY_SHUTDOWN_TIMEOUT_MS) && parse_u64(value, &out->shutdown_timeout_ms)) out->shutdown_timeout_ms = 0;
        else if (out->version == 3 && !strcmp(line, RECORD_KEY_CGROUP) && cg->n_dirs < MAX_CGROUPS && value[0] == '/') cg->dirs[cg->n_dirs++] = value;
        else if (out->version == 3 && !strcmp(line, RECORD_KEY_CGROUP_KILL) && value[0] == '/') cg->kill_file = value;
        else if (out->version == 3 && !strcmp(line, RECORD_KEY_CGROUP_OOM) && value[0] == '/') cg->oom_file = value;
        else if (out->version == 3 && !strcmp(line, RECORD_KEY_CGROUP_SCOPE) && scope_name_ok(value)) cg->scope = value;
    }
    if (have != 3) { free(buf); memset(out, 0, sizeof *out); return 0; }
    out->pid = (pid_t)pid;
    out->start_time = start;
    if (strcmp(out->shutdown_signal, "INT")) strcpy(out->shutdown_signal, "TERM");
    return 1;
}

int state_read(const struct job_plan *j, struct state *out) {
    return state_read_file(j->state, out);
}

int state_running(const struct state *s) {
    unsigned long long now;
    char st;
    if (s->boot_id[0] && strcmp(s->boot_id, boot_id())) return 0;
    /* A zombie is gone: only nobody has reaped it yet. */
    return s->pid > 0 && proc_stat(AT_FDCWD, s->pid, &st, &now) == 0 && now == s->start_time && st != 'Z' && st != 'X';
}

int state_write(const struct job_plan *j, const char *record, pid_t pid, unsigned long long start_time, int with_pidfile) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const char *body = record ? record : "";
    char header[256];
    int h = snprintf(header, sizeof header, RECORD_VERSION "\n" RECORD_KEY_PID " %d\n" RECORD_KEY_START_TIME " %llu\n" RECORD_KEY_BOOT_ID " %s\n" RECORD_KEY_STARTED_AT " %lld\n", (int)pid,
                     start_time, boot_id(), (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    if (h < 0 || (size_t)h >= sizeof header) { errno = EOVERFLOW; return -1; }
    size_t blen = strlen(body);
    char *text = malloc((size_t)h + blen);
    if (!text) return -1;
    memcpy(text, header, (size_t)h);
    memcpy(text + h, body, blen);
    int bad = write_file_at(j->state, text, (size_t)h + blen, 0600);
    free(text);
    if (bad || !with_pidfile) return bad ? -1 : 0;
    /* monit reads the pid with no trailing newline. */
    h = snprintf(header, sizeof header, "%d", (int)pid);
    return write_file_at(j->pidfile, header, (size_t)h, 0644);
}

void state_clear(const struct job_plan *j) {
    if (j->pidfile) unlink(j->pidfile);
    if (j->state) unlink(j->state);
}
