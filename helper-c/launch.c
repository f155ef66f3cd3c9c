/* The container, from a settled plan: the job's directories and pre_start
 * hook on the host, the cgroup join, the mount sources resolved and cloned,
 * new namespaces, and the container's init, whose word on the job's exec is
 * awaited. Used by `start` (detached) and by `launch` (bpm run and trace
 * --startup, in the foreground), which also live here. */
#define _GNU_SOURCE
#include "launch.h"
#include "bpmlog.h"
#include "cgroup.h"
#include "init.h"
#include "mounts.h"
#include "plan.h"
#include "prepare.h"
#include "state.h"
#include "systemd.h"
#include "tee.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

/* The memory limit the plan gives the job, written as bpm.yml's units are
 * (1B, 512M, 2G), into out; "" if it has none. */
static void memory_limit(const struct cgroup_plan *cg, char *out, size_t cap) {
    out[0] = '\0';
    for (int i = 0; i < cg->n_limits; i++) {
        const char *file = strrchr(cg->limits[i].file, '/');
        unsigned long long bytes;
        if (!file || (strcmp(file, "/memory.max") && strcmp(file, "/memory.limit_in_bytes"))) continue;
        if (parse_u64(cg->limits[i].value, &bytes)) continue;
        int unit = 0;
        while (unit < 4 && bytes >= 1024 && bytes % 1024 == 0) bytes /= 1024, unit++;
        snprintf(out, cap, "%llu%c", bytes, "BKMGT"[unit]);
        return;
    }
}

/* Why the init ended without a word: the kernel's OOM killer, when the
 * job's memory limit is too small for even the container's set-up. */
static void init_died(const struct cgroup_plan *cg, long long parent_oom, char *said, size_t cap) {
    char limit[32];
    memory_limit(cg, limit, sizeof limit);
    /* A scope's cgroup may be gone already (systemd removes it once empty): its parent counted the kill too. */
    int oom = cgroup_oom_kills(cg) > 0 || (parent_oom >= 0 && cgroup_parent_oom_kills(cg) > parent_oom);
    if (limit[0] && oom)
        snprintf(said, cap, "the job's memory limit (limits.memory: %s) is too small to start it: "
                 "the kernel's OOM killer killed the container's init before it could start the job", limit);
    else
        snprintf(said, cap, "the container's init exited before starting the job");
}

/* With systemd as the cgroup manager the job's scope is made around the
 * init once it exists: the init waits on a gate (a pipe made before the
 * fork) for the launcher's word that systemd has placed it. This is the
 * init's side: it exits if the word never comes (the launcher died, or gave
 * up on systemd). */
static void scope_wait(int gate[2]) {
    char go;
    close(gate[1]);
    if (read(gate[0], &go, 1) != 1) _exit(125);
    close(gate[0]);
}

/* The launcher's side: asks systemd for the scope around the init, then
 * writes the limits the scope's properties do not cover and opens the gate.
 * Returns the scope's parent's OOM count from before (init_died compares). */
static long long scope_place(const struct cgroup_plan *cg, pid_t init, int gate[2]) {
    close(gate[0]);
    char why[600];
    long long parent_oom = cgroup_parent_oom_kills(cg);
    if (scope_start(cg, init, why, sizeof why)) {
        /* systemd may still act on the request: the scope goes before
         * the init is reaped (until then its pid is not reused). */
        scope_stop(cg->scope);
        kill(init, SIGKILL);
        waitpid(init, NULL, 0);
        fail("%s", why);
    }
    /* A limit below what the waiting init holds has the OOM killer end
     * it as systemd applies it: then there is nothing to start, and the
     * report pipe's end says why (init_died). */
    siginfo_t gone = {0};
    if (!waitid(P_PID, (id_t)init, &gone, WEXITED | WNOHANG | WNOWAIT) && gone.si_pid == 0) {
        cgroup_create(cg);
        if (write_all(gate[1], "g", 1)) die("start the container's init");
    }
    close(gate[1]);
    return parent_oom;
}

int launch_container(struct launch_plan *p, const struct job_io *io, struct launched *out, void (*forked)(const struct launched *)) {
    prepare_dirs(&p->prepare);
    int status_fd = -1;
    if (p->status_path) {
        status_fd = open(p->status_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (status_fd < 0) die("open %s", p->status_path);
    }
    prepare_run_hook(&p->prepare, io);
    mounts_clone_sources(&p->fs);
    /* The pid namespace is the children's: the init is its pid 1. The others
     * are the init's alone (below), so that we stay on the host and can
     * record the state, and clean up, by the host's paths. */
    if ((p->ns_flags & CLONE_NEWPID) && unshare(CLONE_NEWPID)) die("unshare the pid namespace");

    /* The reaper is a host file: opened now, run by the init from inside. */
    p->reaper_fd = -1;
    if (p->reaper && (p->reaper_fd = open(p->reaper, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0) die("open %s", p->reaper);
    int report[2], gate[2] = {-1, -1};
    if (pipe2(report, O_CLOEXEC)) die("pipe");
    if (p->cg.scope && pipe2(gate, O_CLOEXEC)) die("pipe");
    sigset_t set, old;
    block_signals(&set, &old);
    pid_t init = fork();
    if (init < 0) die("fork init");
    if (init == 0) {
        on_fatal = NULL;
        close(report[0]);
        if (lock_fd >= 0) close(lock_fd); /* the lock stays with the helper, not the container */
        bpmlog_forget();
        if (io->tee) tee_forget(io->tee);
        report_fd = report[1];
        /* Detached: a session of its own, and none of the caller's descriptors. */
        if (p->detach && setsid() < 0) die("setsid");
        const int fds[3] = {io->in, io->out, io->err};
        for (int i = 0; i < 3; i++)
            if (fds[i] != i && dup2(fds[i], i) < 0) die("dup2 %d", i);
        for (int i = 0; i < 3; i++)
            if (fds[i] > 2) close(fds[i]);
        /* Into the job's cgroup before anything of the job exists (systemd
         * moves us into a scope; we join bpm's own cgroups); we who launched
         * it stay out, to clean up after it. */
        if (p->cg.scope) scope_wait(gate);
        else
            for (int i = 0; i < p->cg.n_procs; i++) join_cgroup(p->cg.procs[i]);
        if ((p->ns_flags & ~CLONE_NEWPID) && unshare(p->ns_flags & ~CLONE_NEWPID)) die("unshare namespaces");
        init_main(p, status_fd);
    }
    close(report[1]);
    out->parent_oom = p->cg.scope ? scope_place(&p->cg, init, gate) : -1;
    if (status_fd >= 0) close(status_fd);
    if (p->reaper_fd >= 0) close(p->reaper_fd);
    if (p->pause) close(GO_FD);
    out->init = init;
    /* The init is our child and not yet reaped, so its start time is there
     * to read even if the job has already come and gone. */
    if (proc_start_time(AT_FDCWD, init, &out->start_time)) die("read start time of %d", (int)init);
    if (forked) forked(out);

    /* "ok" once the job has exec'd, else the reason it did not. */
    size_t got = 0;
    for (;;) {
        ssize_t n = read(report[0], out->said + got, sizeof out->said - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
        if (got >= sizeof out->said - 1) break;
    }
    close(report[0]);
    out->said[got] = '\0';
    char *nl = strchr(out->said, '\n');
    if (nl) *nl = '\0';
    if (!strcmp(out->said, "ok")) return 0;
    if (!strncmp(out->said, "error: ", 7)) memmove(out->said, out->said + 7, strlen(out->said + 7) + 1);
    else if (!got) init_died(&p->cg, out->parent_oom, out->said, sizeof out->said);
    return -1;
}

/* The job's cgroup, cleaned of what a dead run left and made afresh, with
 * the lock held and nothing running. */
void launch_fresh_cgroup(const struct launch_plan *p, const struct state *dead) {
    if (dead) {
        char extra[64];
        json_number(extra, sizeof extra, "pid", dead->pid);
        bpmlog("info", "cleaning-up-failed-process", extra);
    }
    /* Where the dead run's start put its cgroup, as recorded; then where
     * this start will (with no state too: a bpm killed mid-start leaves a cgroup). */
    char why[600];
    if (dead && dead->cg.n_dirs && cgroup_remove(&dead->cg, why, sizeof why)) fail("%s", why);
    if (cgroup_remove(&p->cg, why, sizeof why)) fail("%s", why);
    state_clear(&p->job);
    if (p->status_path) unlink(p->status_path);
    /* A scope is made around the init, once it is forked (launch_container). */
    if (!p->cg.scope) cgroup_create(&p->cg);
}

/* The `launch` verb: the plan and the CLI's report channel on fd. */
static struct launch_plan plan;
static int report;
static int cgroup_made, recorded;

static void launch_failed(const char *msg) {
    char why[600];
    if (recorded) state_clear(&plan.job);
    if (cgroup_made) cgroup_remove(&plan.cg, why, sizeof why);
    char line[1200];
    int n = snprintf(line, sizeof line, "error: %s\n", msg);
    if (n > 0) write_all(report, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    _exit(125);
}

static void report_pid(const struct launched *l) {
    char line[64];
    int n = snprintf(line, sizeof line, "pid %d %llu\n", (int)l->init, l->start_time);
    write_all(report, line, (size_t)n);
}

int launch_main(int fd) {
    report = report_fd = fd;
    launch_plan_read(fd, &plan);
    /* In the foreground the job lives only as long as bpm: if bpm dies, the
     * TERM arrives here and is forwarded like any other. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0)) die("set parent-death signal");
    if (plan.pause && fcntl(GO_FD, F_GETFD) < 0) die("startup tracing needs descriptor %d", GO_FD);
    /* The CLI waits for the report channel to close: nothing we exec (the
     * pre_start hook, the reaper) may keep it, nor the go-ahead, open. */
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) || (plan.pause && fcntl(GO_FD, F_SETFD, FD_CLOEXEC))) die("close-on-exec for the CLI's descriptors");
    struct state st;
    int have = state_enter(&plan.job, &st, 0);
    if (have && state_running(&st)) {
        char extra[64], line[64];
        json_number(extra, sizeof extra, "pid", st.pid);
        bpmlog("info", "process-already-running", extra);
        int n = snprintf(line, sizeof line, "running %d\n", (int)st.pid);
        write_all(fd, line, (size_t)n);
        return 0;
    }
    if (plan.refuse) fail("%s", plan.refuse);
    on_fatal = launch_failed;
    launch_fresh_cgroup(&plan, have ? &st : NULL);
    cgroup_made = 1;

    /* The job's output comes to us, for its logs and bpm's terminal (our
     * stdout and stderr; a terminal that goes away is an EPIPE: main.c). */
    int out_log = open_job_log(&plan.job, plan.stdout_log);
    int err_log = open_job_log(&plan.job, plan.stderr_log);
    static struct tee tee;
    struct job_io io = {0, -1, -1, &tee};
    tee_open(&tee, out_log, err_log, &io.out, &io.err);
    struct launched l;
    int failed = launch_container(&plan, &io, &l, report_pid);
    /* The init and the hook have theirs: the pipes end when the job's processes are gone. */
    close(io.out);
    close(io.err);
    if (failed) {
        /* The init never got the job going: it exits with the exec's status (127, 126). */
        char line[800];
        int n = snprintf(line, sizeof line, "error: %s\n", l.said);
        write_all(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    } else {
        /* While it runs it is recorded as a start's process is (list, pid,
         * shell and trace see it), without the pidfile monit watches. */
        if (state_write(&plan.job, plan.record, l.init, l.start_time, 0)) die("writing %s", plan.job.state);
        recorded = 1;
        write_str(fd, "ok\n");
    }

    /* launch_container blocked the signals bpm passes on: they come here, for the init. */
    sigset_t set;
    sigemptyset(&set);
    for (const int *s = forwarded_signals; *s; s++) sigaddset(&set, *s);
    int sigfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sigfd < 0) die("signalfd");
    int w = tee_wait(&tee, l.init, sigfd);
    close(sigfd);
    /* Whatever the job left (it had no pid namespace of its own, say) ends here. */
    long long oom = cgroup_oom_kills(&plan.cg);
    char why[600];
    if (recorded) state_clear(&plan.job);
    recorded = 0;
    if (cgroup_remove(&plan.cg, why, sizeof why)) fail("%s", why);
    cgroup_made = 0;
    /* The job's processes are all gone: the rest of their output, then the exit. */
    tee_drain(&tee);
    char line[64];
    int n = snprintf(line, sizeof line, "exit %d %lld\n", shell_status(w), oom);
    write_all(fd, line, (size_t)n);
    return shell_status(w);
}
