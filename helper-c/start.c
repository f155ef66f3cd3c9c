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

static struct launch_plan plan;
static int cgroup_made;

/* Everything this start made goes; the error is said where the CLI would have said it. */
static __attribute__((noreturn)) void start_failed(const char *msg) {
    char why[600];
    if (cgroup_made) cgroup_remove(&plan.cg, why, sizeof why);
    state_clear(&plan.job);
    bpmlog_command_failed(plan.job.error_prefix, msg);
}

/* The refusal the CLI sent is already a whole message. */
static __attribute__((noreturn)) void refused(const char *msg) {
    bpmlog_command_failed(NULL, msg);
}

int start_main(const char *how) {
    /* Until the plan is read, a failure is the CLI's kind: "Error: ...". */
    on_fatal = refused;
    int from = plan_source(how);
    launch_plan_read(from, &plan);
    if (from != PLAN_FROM_ENV) close(from);
    struct state st;
    int have = state_enter(&plan.job, &st, 0);
    if (have && state_running(&st)) {
        char extra[64];
        json_number(extra, sizeof extra, "pid", st.pid);
        bpmlog("info", "process-already-running", extra);
        bpmlog("info", "complete", NULL);
        return 0;
    }
    if (plan.refuse) refused(plan.refuse);
    on_fatal = start_failed;
    launch_fresh_cgroup(&plan, have ? &st : NULL);
    cgroup_made = 1;

    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0) die("open /dev/null");
    struct job_io io = {devnull, open_job_log(&plan.job, plan.stdout_log), open_job_log(&plan.job, plan.stderr_log), NULL};
    struct launched l;
    if (launch_container(&plan, &io, &l, NULL)) fail("%s", l.said);
    /* A job that has already exited is recorded all the same: it reads "failed", with its exit. */
    if (state_write(&plan.job, plan.record, l.init, l.start_time, 1)) die("writing %s", plan.job.state);
    char extra[64];
    json_number(extra, sizeof extra, "pid", l.init);
    bpmlog("info", "complete", extra);
    return 0;
}
