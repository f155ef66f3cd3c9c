#define _GNU_SOURCE
#include "start.h"
#include "bpmlog.h"
#include "cgroup.h"
#include "launch.h"
#include "plan.h"
#include "state.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct plan plan;
static int cgroup_made;

/* Everything this start made goes; the error is said where the CLI would have said it. */
static __attribute__((noreturn)) void start_failed(const char *msg) {
    char why[600];
    if (cgroup_made) cgroup_remove(&plan, why, sizeof why);
    state_clear(&plan);
    bpmlog_command_failed(plan.job.error_prefix, msg);
}

/* The refusal the CLI sent is already a whole message. */
static __attribute__((noreturn)) void refused(const char *msg) {
    bpmlog_command_failed(NULL, msg);
}

/* A process log, opened as bpm.log is: no symlink, a plain file of its own. */
static int open_log(const char *path) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ELOOP) fail("refusing to open symlink at %s", path);
    if (fd < 0) die("open %s", path);
    struct stat st;
    if (fstat(fd, &st)) die("stat %s", path);
    if (!S_ISREG(st.st_mode)) fail("refusing to open %s: not a regular file", path);
    if (st.st_nlink != 1) fail("refusing to open %s: it has %lu hard links", path, (unsigned long)st.st_nlink);
    if (fchown(fd, plan.job.log_uid, plan.job.log_gid) || fchmod(fd, 0600)) die("chown %s", path);
    return fd;
}

int start_main(const char *plan_file) {
    /* Until the plan is read, a failure is the CLI's kind: "Error: ...". */
    on_fatal = refused;
    plan_read_file(plan_file, &plan);
    bpmlog_open(&plan);
    if (plan.job.lock) lock_job(plan.job.lock);
    struct state st;
    int have = state_read(&plan, &st);
    if (have && state_running(&st)) {
        char extra[64];
        json_number(extra, sizeof extra, "pid", st.pid);
        bpmlog("info", "process-already-running", extra);
        bpmlog("info", "complete", NULL);
        return 0;
    }
    if (plan.job.refuse) refused(plan.job.refuse);
    on_fatal = start_failed;
    launch_fresh_cgroup(&plan, have ? &st : NULL);
    cgroup_made = 1;

    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0) die("open /dev/null");
    struct job_io io = {devnull, open_log(plan.job.stdout_log), open_log(plan.job.stderr_log)};
    struct launched l;
    if (launch_container(&plan, &io, &l, NULL)) fail("%s", l.said);
    /* A job that has already exited is recorded all the same: it reads "failed", with its exit. */
    if (state_write(&plan, l.init, l.start_time)) die("writing %s", plan.job.state);
    char extra[64];
    json_number(extra, sizeof extra, "pid", l.init);
    bpmlog("info", "complete", extra);
    return 0;
}
