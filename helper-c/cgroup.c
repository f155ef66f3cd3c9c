#define _GNU_SOURCE
#include "cgroup.h"
#include "exitrecord.h"
#include "systemd.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How often making the cgroup starts over when a parent vanished under it. */
#define CREATE_ATTEMPTS 50
/* How long a start waits for a dead run's processes to exit once killed. */
#define REMOVE_BOUND_MS 10000ULL

static int read_small(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, cap - 1);
    int saved = errno;
    close(fd);
    if (n < 0) { errno = saved; return -1; }
    buf[n] = '\0';
    return 0;
}

static int write_small(const char *path, const char *value) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = write_all(fd, value, strlen(value));
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

static int mkdir_p(const char *dir) {
    char path[4096];
    if (strlen(dir) >= sizeof path) { errno = ENAMETOOLONG; return -1; }
    strcpy(path, dir);
    for (char *s = strchr(path + 1, '/');; s = strchr(s + 1, '/')) {
        if (s) *s = '\0';
        if (mkdir(path, 0755) && errno != EEXIST) return -1;
        if (!s) return 0;
        *s = '/';
    }
}

static int has_word(const char *list, const char *word) {
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ' ' || p[-1] == '\n') && (p[n] == ' ' || p[n] == '\n' || !p[n])) return 1;
    return 0;
}

/* v2 lets a cgroup limit only what its parent enables in cgroup.subtree_control. */
static int enable_controllers(const struct cgroup_plan *cg) {
    char words[128];
    if (!cg->controllers || strlen(cg->controllers) >= sizeof words) return 0;
    for (int i = 0; i < cg->n_enable; i++) {
        const char *dir = cg->enable[i];
        if (i > 0 && mkdir(dir, 0755) && errno != EEXIST) return -1;
        char file[4200], have[256];
        snprintf(file, sizeof file, "%s/cgroup.subtree_control", dir);
        if (read_small(file, have, sizeof have)) return -1;
        char want[256] = "";
        strcpy(words, cg->controllers);
        for (char *save = NULL, *c = strtok_r(words, " ", &save); c; c = strtok_r(NULL, " ", &save)) {
            if (has_word(have, c)) continue;
            strcat(want, want[0] ? " +" : "+");
            strcat(want, c);
        }
        /* What the host already enables is left as it is. */
        if (want[0] && write_small(file, want)) return -1;
    }
    return 0;
}

/* In a scope, systemd has made the directories: they are checked, not made
 * (a directory made here would be one systemd does not know). */
static void check_scope_dirs(const struct cgroup_plan *cg) {
    for (int i = 0; i < cg->n_dirs; i++) {
        struct stat st;
        if (stat(cg->dirs[i], &st) || !S_ISDIR(st.st_mode))
            die("systemd started scope %s but %s is not there (is systemd's cgroup tree the one mounted here?)", cg->scope, cg->dirs[i]);
    }
}

/* The limits, in a scope too: systemd keeps the same values as its
 * properties; v1's memory+swap limit is ours alone. */
static int write_limits(const struct cgroup_plan *cg) {
    for (int i = 0; i < cg->n_limits; i++)
        if (write_small(cg->limits[i].file, cg->limits[i].value) && !(errno == ENOENT && cg->limits[i].optional)) return -1;
    return 0;
}

static int create_once(const struct cgroup_plan *cg) {
    if (cg->scope) {
        check_scope_dirs(cg);
        return write_limits(cg);
    }
    if (enable_controllers(cg)) return -1;
    for (int i = 0; i < cg->n_dirs; i++)
        if (mkdir_p(cg->dirs[i])) return -1;
    return write_limits(cg);
}

void cgroup_create(const struct cgroup_plan *cg) {
    /* Another bpm, or an operator, may remove an empty parent at any point
     * of this: a directory made again then lacks the controllers, and a
     * file is missing. Start over; once the job's directory holds its
     * limits it is not empty and stays. */
    for (int attempt = 1;; attempt++) {
        if (!create_once(cg)) return;
        if (errno != ENOENT || attempt >= CREATE_ATTEMPTS) die("create cgroup %s", cg->n_dirs ? cg->dirs[0] : "");
    }
}

static void pause_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {}
}

/* The job's directories this start uses, then those an earlier one may have left (v1: cpu). */
static int n_removable(const struct cgroup_plan *cg) { return cg->n_dirs + cg->n_leftovers; }
static const char *removable(const struct cgroup_plan *cg, int i) {
    return i < cg->n_dirs ? cg->dirs[i] : cg->leftovers[i - cg->n_dirs];
}

/* Calls each(pid, ctx) for every pid in dir's cgroup.procs; returns how
 * many there were (0 for a cgroup that is gone: it holds nothing). A long
 * list comes in pieces: a line cut by one read is finished by the next. */
static int each_pid(const char *dir, void (*each)(unsigned long long pid, void *ctx), void *ctx) {
    char file[4200];
    if ((size_t)snprintf(file, sizeof file, "%s/cgroup.procs", dir) >= sizeof file) return 0;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[8192];
    size_t kept = 0;  /* the start of a line the last read cut */
    int found = 0;
    for (;;) {
        ssize_t n = read(fd, buf + kept, sizeof buf - 1 - kept);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        size_t len = kept + (size_t)n;
        buf[len] = '\0';
        char *line = buf;
        for (char *nl; (nl = strchr(line, '\n')); line = nl + 1) {
            *nl = '\0';
            unsigned long long pid;
            if (parse_u64(line, &pid) || pid == 0 || pid > 0x7fffffff) continue;
            found++;
            each(pid, ctx);
        }
        kept = len - (size_t)(line - buf);
        if (kept >= 32) kept = 0;  /* no pid is that long */
        memmove(buf, line, kept);
    }
    close(fd);
    return found;
}

static void kill_one(unsigned long long pid, void *ctx) {
    (void)ctx;
    kill((pid_t)pid, SIGKILL);
}

/* Sends SIGKILL to every pid in the job's cgroups; returns how many there were. */
static int kill_all(const struct cgroup_plan *cg) {
    int found = 0;
    for (int i = 0; i < n_removable(cg); i++) found += each_pid(removable(cg, i), kill_one, NULL);
    return found;
}

/* What keeps a killed process from exiting: a killed process must run, in
 * its own cgroup, to exit, so a CPU ceiling (900 killed processes took
 * over 5 s to exit under 2 % of a CPU here, far longer under emulation), a
 * starving weight or a freeze holds the whole job back. Each is lifted in every directory of the job's own; a file
 * the kernel lacks there (the other cgroup version, a controller the job does
 * not use) is skipped, and a write that fails leaves the wait to tell. */
static const struct { const char *file, *value; } unthrottle[] = {
    {"cgroup.freeze", "0"},        /* v2 */
    {"freezer.state", "THAWED"},   /* v1, in a hierarchy mounted with the freezer */
    {"cpu.max", "max"},            /* v2: the period stays */
    {"cpu.weight", "100"},         /* v2: the default */
    {"cpu.cfs_quota_us", "-1"},    /* v1 */
    {"cpu.shares", "1024"},        /* v1: the default */
};

void cgroup_unthrottle(const struct cgroup_plan *cg) {
    for (int i = 0; i < n_removable(cg); i++)
        for (size_t k = 0; k < sizeof unthrottle / sizeof unthrottle[0]; k++) {
            char file[4200];
            if ((size_t)snprintf(file, sizeof file, "%s/%s", removable(cg, i), unthrottle[k].file) >= sizeof file) continue;
            write_small(file, unthrottle[k].value);
        }
}

/* The first few of a cgroup's processes, as "pid state" (R running, S
 * sleeping, D held in the kernel, Z exited...), for the operator. */
struct sample { char *list; size_t cap, used; int shown; };

static void sample_one(unsigned long long pid, void *ctx) {
    struct sample *s = ctx;
    if (s->shown >= 5 || s->used + 32 >= s->cap) return;
    char stat[1024] = "", path[64];
    snprintf(path, sizeof path, "/proc/%llu/stat", pid);
    /* "pid (comm) S ...": the state follows the last ')'. */
    char *close_paren = read_small(path, stat, sizeof stat) ? NULL : strrchr(stat, ')');
    char state = close_paren && close_paren[1] == ' ' ? close_paren[2] : '?';
    s->used += (size_t)snprintf(s->list + s->used, s->cap - s->used, "%s%llu %c", s->shown ? ", " : "", pid, state);
    s->shown++;
}

/* How many processes dir holds; the first few of them in list. */
static int describe_procs(const char *dir, char *list, size_t cap) {
    struct sample s = {list, cap, 0, 0};
    list[0] = '\0';
    int count = each_pid(dir, sample_one, &s);
    if (count > s.shown && s.used + 6 < cap) snprintf(list + s.used, cap - s.used, ", ...");
    return count;
}

void cgroup_say_left(const struct cgroup_plan *cg, unsigned seconds) {
    for (int i = 0; i < n_removable(cg); i++) {
        char list[256];
        int count = describe_procs(removable(cg, i), list, sizeof list);
        if (!count) continue;
        write_line(2, "bpm: %u s after SIGKILL, %d process%s of the job still in %s (pid state: %s); waiting for them to exit\n",
                   seconds, count, count == 1 ? "" : "es", removable(cg, i), list);
        return;
    }
    write_line(2, "bpm: %u s after SIGKILL, the job's processes are still exiting; waiting for them\n", seconds);
}

/* Polls quickly at first (most jobs are gone in milliseconds), then gently. */
static long next_pause(unsigned long long waited_ms) { return waited_ms < 1000 ? 10 : 100; }

void cgroup_empty(const struct cgroup_plan *cg) {
    cgroup_unthrottle(cg);
    /* v2 (Linux 5.14+): one write kills every process, even one forking as we go. */
    if (cg->kill_file) write_small(cg->kill_file, "1");
    unsigned long long waited = 0, said = 0;
    while (kill_all(cg) > 0) {
        if (waited - said >= CGROUP_SAY_LEFT_MS) {
            said = waited;
            cgroup_say_left(cg, (unsigned)(waited / 1000));
        }
        long ms = next_pause(waited);
        pause_ms(ms);
        waited += (unsigned long long)ms;
    }
}

int cgroup_remove(const struct cgroup_plan *cg, char *why, size_t cap) {
    cgroup_unthrottle(cg);
    /* v2 (Linux 5.14+): one write kills every process, even one forking as we go. */
    if (cg->kill_file) write_small(cg->kill_file, "1");
    /* Bounded: a start cleaning what a dead run left, or undoing itself,
     * fails rather than wait on (stop empties the cgroup first, without a
     * bound). Unthrottled, a job's processes exit in milliseconds. */
    for (unsigned long long waited = 0; kill_all(cg) > 0;) {
        if (waited >= REMOVE_BOUND_MS) {
            char list[256];
            int count = describe_procs(cg->dirs[0], list, sizeof list);
            snprintf(why, cap, "%d process%s in %s survived SIGKILL for %llu s (pid state: %s)", count, count == 1 ? "" : "es",
                     cg->dirs[0], REMOVE_BOUND_MS / 1000, list);
            return -1;
        }
        long ms = next_pause(waited);
        pause_ms(ms);
        waited += (unsigned long long)ms;
    }
    /* A scope is systemd's to remove, with its directories in every
     * hierarchy; what is left of them after that goes as ours do. */
    struct stat st;
    if (cg->scope && cg->n_dirs && !stat(cg->dirs[0], &st)) scope_stop(cg->scope);
    for (int i = 0; i < n_removable(cg); i++) {
        for (int tries = 0; rmdir(removable(cg, i)); tries++) {
            if (errno == ENOENT) break;
            /* EBUSY while the kernel finishes tearing down exited tasks. */
            if (errno != EBUSY || tries > 400) {
                snprintf(why, cap, "remove cgroup %s: %s", removable(cg, i), strerror(errno));
                return -1;
            }
            pause_ms(5);
        }
    }
    return 0;
}

static long long oom_kills_in(const char *file) {
    int fd = file ? open(file, O_RDONLY | O_CLOEXEC) : -1;
    long long n = exit_record_oom_kills(fd);
    if (fd >= 0) close(fd);
    return n;
}

long long cgroup_oom_kills(const struct cgroup_plan *cg) {
    return oom_kills_in(cg->oom_file);
}

long long cgroup_parent_oom_kills(const struct cgroup_plan *cg) {
    return oom_kills_in(cg->parent_oom_file);
}
