/* `launch [lock]`: take the job's lock if asked (and say "locked"), read the
 * plan, prepare the job's directories, run its pre_start hook, join the
 * cgroups, resolve the mount sources, unshare namespaces, and fork the
 * container's init.
 * Detached: report the init's pid and leave. Foreground: stay, forward
 * signals to the init, and exit with its status. */
#define _GNU_SOURCE
#include "launch.h"
#include "init.h"
#include "mounts.h"
#include "plan.h"
#include "prepare.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static struct plan plan;


int launch_main(int fd, int lock) {
    report_fd = fd;
    if (lock) {
        take_lock(LOCK_FD);
        if (write_str(fd, "locked\n")) die("report locked");
    }
    plan_read(fd, &plan);
    if (plan.detach) setsid(); /* no controlling terminal; fails harmlessly if already a leader */
    /* In the foreground the job lives only as long as bpm: if bpm dies, the
     * TERM arrives here and is forwarded like any other. */
    else if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0)) die("set parent-death signal");
    if (plan.pause && fcntl(GO_FD, F_GETFD) < 0) die("startup tracing needs descriptor %d", GO_FD);

    int status_fd = -1;
    if (plan.status_path) {
        status_fd = open(plan.status_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (status_fd < 0) die("open %s", plan.status_path);
    }
    /* The host's /proc, held open: once the init pivots the (shared) mount
     * namespace into the container, the path /proc means the container's. */
    int procfd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (procfd < 0) die("open /proc");
    prepare_dirs(&plan);
    prepare_run_hook(&plan);
    for (int i = 0; i < plan.n_cgroups; i++) join_cgroup(plan.cgroups[i]);
    mounts_clone_sources(&plan); /* still in the host's mount namespace */
    if (plan.ns_flags && unshare(plan.ns_flags)) die("unshare namespaces");

    sigset_t set, old;
    block_signals(&set, &old);
    pid_t init = fork();
    if (init < 0) die("fork init");
    if (init == 0) {
        close(procfd); /* the container keeps nothing of the host's */
        init_main(&plan, status_fd);
    }
    if (plan.pause) close(GO_FD);

    /* The init is our child and not yet reaped, so its start time is there
     * to read even if the job has already come and gone. */
    unsigned long long started = 0;
    if (proc_start_time(procfd, init, &started)) die("read start time of %d", (int)init);
    char line[64];
    int n = snprintf(line, sizeof line, "pid %d %llu\n", (int)init, started);
    write_all(fd, line, (size_t)n);
    close(fd);
    report_fd = -1;
    if (plan.detach) return 0;

    for (;;) {
        forward_until_child(&set, init);
        int w;
        pid_t pid = waitpid(init, &w, WNOHANG);
        if (pid == init) return shell_status(w);
    }
}
