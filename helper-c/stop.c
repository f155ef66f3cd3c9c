/* `stop env|fd`: what `bpm stop` becomes once the CLI has handed over.
 * With the job's lock: the shutdown signal recorded at start, the shutdown
 * timeout recorded with it (15 s by default), QUIT, 2 s, KILL, through a
 * pidfd that returns the moment the init exits; then
 * everything left in the cgroup is killed and the cgroup, pidfile and state
 * are removed. Nothing running: the leftovers are cleaned all the same.
 * A stop always ends with the job gone: before the KILL the job's CPU
 * ceiling and any freeze are lifted (killed processes must run to exit),
 * and then it waits as long as that takes, saying on stderr what is left. */
#define _GNU_SOURCE
#include "stop.h"
#include "util.h"
#include "bpmlog.h"
#include "cgroup.h"
#include "plan.h"
#include "state.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int exited_within(int pidfd, unsigned long long ms) {
    struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
    for (;;) {
        int timeout = ms > 0x7fffffff ? 0x7fffffff : (int)ms;
        int r = poll(&pfd, 1, timeout);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die("poll pidfd");
        return r > 0;
    }
}

static void send(int pidfd, int sig) {
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) && errno != ESRCH) die("signal %d", sig);
}

/* Signals the init through a pidfd (immune to pid reuse) on the schedule:
 * the shutdown signal, grace, QUIT, dump time, KILL. Returns how it ended:
 * "exited", "quit" or "killed"; "gone" if it was not running. */
static const char *stop_init(pid_t pid, unsigned long long want_start, int sig, unsigned long long grace_ms, unsigned long long quit_ms,
                             const struct cgroup_plan *cg) {
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        if (errno == ESRCH) return "gone";
        die("pidfd_open %d", (int)pid);
    }
    /* With the pidfd held the pid cannot be reused: check it is still ours. */
    unsigned long long started;
    if (proc_start_time(AT_FDCWD, pid, &started) || started != want_start) return "gone";
    send(pidfd, sig);
    if (exited_within(pidfd, grace_ms)) return "exited";
    send(pidfd, SIGQUIT);
    if (exited_within(pidfd, quit_ms)) return "quit";
    cgroup_unthrottle(cg);
    send(pidfd, SIGKILL);
    /* The init of a pid namespace exits once every process in it has. */
    for (unsigned long long waited = 0; !exited_within(pidfd, CGROUP_SAY_LEFT_MS);) {
        waited += CGROUP_SAY_LEFT_MS;
        cgroup_say_left(cg, (unsigned)(waited / 1000));
    }
    return "killed";
}

static struct stop_plan plan;

static __attribute__((noreturn)) void stop_failed(const char *msg) {
    bpmlog_command_failed(plan.job.error_prefix, msg);
}

int stop_main(const char *how) {
    on_fatal = stop_failed;
    int from = plan_source(how);
    stop_plan_read(from, &plan);
    if (from != PLAN_FROM_ENV) close(from);
    struct state st;
    char why[600], extra[200];
    int have = state_enter(&plan.job, &st, 1);
    /* The cgroup the record names (where that start put it), else where the
     * CLI says a start puts it (a record the previous bpm wrote, or none). */
    const struct cgroup_plan *cg = have && st.cg.n_dirs ? &st.cg : &plan.cg;
    if (!have || !state_running(&st)) {
        bpmlog("info", "job-already-stopped", NULL);
        /* Whatever a dead run or a killed bpm left: processes, cgroup, pidfile. */
        cgroup_empty(cg);
        if (cg != &plan.cg && cgroup_remove(cg, why, sizeof why)) fail("%s", why);
        if (cgroup_remove(&plan.cg, why, sizeof why)) fail("%s", why);
        state_clear(&plan.job);
        bpmlog("info", "complete", NULL);
        return 0;
    }
    /* With the lock held, the stop runs to its end: systemd TERMs every
     * process in monit's service when it restarts it, and a stop cut short
     * leaves its job half-stopped. (A start is as safe from the moment it
     * forks the container's init: launch_container blocks these too.) */
    sigset_t finish;
    sigemptyset(&finish);
    for (const int *s = (const int[]){SIGTERM, SIGINT, SIGHUP, SIGQUIT, 0}; *s; s++) sigaddset(&finish, *s);
    if (sigprocmask(SIG_BLOCK, &finish, NULL)) die("sigprocmask");
    int sig = strcmp(st.shutdown_signal, "INT") ? SIGTERM : SIGINT;
    snprintf(extra, sizeof extra, "\"pid\":%d,\"signal\":\"%s\"", (int)st.pid, sig == SIGINT ? "INT" : "TERM");
    bpmlog("info", "stopping", extra);
    /* A state an older bpm wrote records no timeout: the default schedule's. */
    unsigned long long grace_ms = st.shutdown_timeout_ms ? st.shutdown_timeout_ms : plan.grace_ms;
    const char *ended = stop_init(st.pid, st.start_time, sig, grace_ms, plan.quit_ms, cg);
    snprintf(extra, sizeof extra, "\"pid\":%d,\"how\":\"%s\"", (int)st.pid, ended);
    if (!strcmp(ended, "quit") || !strcmp(ended, "killed")) bpmlog("error", "forceful-shutdown", extra);
    cgroup_empty(cg);
    if (cgroup_remove(cg, why, sizeof why)) fail("%s", why);
    state_clear(&plan.job);
    bpmlog("info", "complete", extra);
    return 0;
}
