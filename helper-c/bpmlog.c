#define _GNU_SOURCE
#include "bpmlog.h"
#include "util.h"
#include "wire.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int log_fd = -1;
static const char *prefix = "bpm", *base = "";

/* Why a log could not be opened, cut to fit (a long path makes a long message). */
static __attribute__((format(printf, 3, 4))) void say(char *why, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

/* mkdir -p: what is missing of dir and its parents, root's, 0755 (the last
 * 0700 until its owner is set); the parents through root's own symlinks
 * (/var/vcap/sys on a BOSH VM), as any mkdir -p goes. */
static int make_dirs(char *dir, char *why, size_t cap) {
    for (char *slash = strchr(dir + 1, '/');; slash = strchr(slash + 1, '/')) {
        if (slash) *slash = '\0';
        int bad = mkdir(dir, slash ? 0755 : 0700) && errno != EEXIST;
        if (bad) say(why, cap, "create %s: %s", dir, strerror(errno));
        if (slash) *slash = '/';
        if (bad) return -1;
        if (!slash) return 0;
    }
}

/* The job's log directory, made if missing, opened without following a
 * symlink, then the job's and 0750 on the descriptor; -1 and why. */
static int open_log_dir(const struct job_plan *j, char *dir, char *why, size_t cap) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (make_dirs(dir, why, cap)) return -1;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
        /* O_DIRECTORY says ENOTDIR for a symlink too: it is named for what it is. */
        int e = errno;
        struct stat st;
        if (!lstat(dir, &st) && S_ISLNK(st.st_mode)) say(why, cap, "refusing to open symlink at %s", dir);
        else say(why, cap, "open %s: %s", dir, strerror(e));
        return -1;
    }
    if (fchown(fd, j->log_uid, j->log_gid) || fchmod(fd, 0750)) {
        say(why, cap, "set the owner of %s: %s", dir, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* The opener behind open_job_log: -1 and the reason in why instead of dying. */
static int try_open_job_log(const struct job_plan *j, const char *path, char *why, size_t cap) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash || slash == path || !slash[1] || (size_t)(slash - path) >= sizeof dir) {
        say(why, cap, "%s: not a file in a log directory", path);
        return -1;
    }
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    int dirfd = open_log_dir(j, dir, why, cap);
    if (dirfd < 0) return -1;
    int fd = openat(dirfd, slash + 1, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    int e = errno;
    close(dirfd);
    if (fd < 0) {
        if (e == ELOOP) say(why, cap, "refusing to open symlink at %s", path);
        else say(why, cap, "open %s: %s", path, strerror(e));
        return -1;
    }
    struct stat st;
    const char *refusal = NULL;
    char links[64];
    if (fstat(fd, &st)) refusal = strerror(errno);
    else if (!S_ISREG(st.st_mode)) refusal = "not a regular file";
    else if (st.st_nlink != 1) snprintf(links, sizeof links, "it has %lu hard links", (unsigned long)st.st_nlink), refusal = links;
    else if (fchown(fd, j->log_uid, j->log_gid) || fchmod(fd, 0600)) refusal = strerror(errno);
    if (refusal) {
        say(why, cap, "refusing to open %s: %s", path, refusal);
        close(fd);
        return -1;
    }
    return fd;
}

int open_job_log(const struct job_plan *j, const char *path) {
    char why[600];
    int fd = try_open_job_log(j, path, why, sizeof why);
    if (fd < 0) fail("%s", why);
    return fd;
}

int bpmlog_open(const struct job_plan *j, enum bpmlog_need need) {
    if (!j->bpmlog) return 0;
    prefix = j->event ? j->event : "bpm";
    base = j->log_base ? j->log_base : "";
    if (need == BPMLOG_REQUIRED) {
        log_fd = open_job_log(j, j->bpmlog);
    } else {
        /* A stop goes ahead without it: what the job planted there is not written through. */
        char why[600];
        log_fd = try_open_job_log(j, j->bpmlog, why, sizeof why);
        if (log_fd < 0) write_line(2, "bpm.log not written: %s\n", why);
    }
    if (log_fd < 0) return -1;
    /* What the CLI logged before it handed over comes first. */
    if (j->loglines) write_all(log_fd, j->loglines, strlen(j->loglines));
    return 0;
}

int bpmlog_main(int fd) {
    static struct log_plan plan;
    log_plan_read(fd, &plan);
    return bpmlog_open(&plan.job, plan.wanted ? BPMLOG_WANTED : BPMLOG_REQUIRED) ? 1 : 0;
}

void bpmlog(const char *level, const char *name, const char *extra) {
    if (log_fd < 0) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[40], data[1600], line[2048];
    size_t w = strftime(stamp, sizeof stamp - 8, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + w, sizeof stamp - w, ".%03uZ", (unsigned)(ts.tv_nsec / 1000000) % 1000u);
    int d = snprintf(data, sizeof data, "%s%s%s", base, extra && *extra && *base ? "," : "", extra ? extra : "");
    /* The line's shape is src/plan/wire.ts's eventLine, generated into wire.h. */
    int n = d < 0 || (size_t)d >= sizeof data ? -1 : snprintf(line, sizeof line, EVENT_LINE_FORMAT, stamp, level, prefix, name, data);
    if (n < 0 || (size_t)n >= sizeof line) return; /* an event too long to be true: dropped */
    write_all(log_fd, line, (size_t)n);
}

void bpmlog_command_failed(const char *prefix, const char *msg) {
    char extra[1300];
    json_text(extra, sizeof extra, "error", msg);
    bpmlog("error", "failed", extra);
    bpmlog("info", "complete", NULL);
    write_line(2, "Error: %s%s\n", prefix ? prefix : "", msg);
    _exit(1);
}

void bpmlog_forget(void) {
    if (log_fd >= 0) close(log_fd);
    log_fd = -1;
}

void json_number(char *out, size_t cap, const char *key, long long value) {
    snprintf(out, cap, "\"%s\":%lld", key, value);
}

void json_text(char *out, size_t cap, const char *key, const char *value) {
    char esc[1200];
    json_escape(esc, sizeof esc, value);
    snprintf(out, cap, "\"%s\":\"%s\"", key, esc);
}
