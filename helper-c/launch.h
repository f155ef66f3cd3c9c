#ifndef BPM_LAUNCH_H
#define BPM_LAUNCH_H
#include "plan.h"
#include "state.h"

/* The container's stdin, stdout and stderr (also the hook's out and err),
 * and, in the foreground, the tee that copies what comes out of them while
 * the helper waits for the hook and the job (NULL: start, the logs themselves). */
struct tee;
struct job_io { int in, out, err; struct tee *tee; };

struct launched {
    pid_t init;                     /* the container's init, host pid */
    unsigned long long start_time;  /* its start time, from /proc */
    char said[700];                 /* why the job did not start, when it did not */
    long long parent_oom;           /* in a systemd scope: the parent's OOM kills before the init ran, or -1 */
};

/* Directories, hook, cgroup join, mount sources, namespaces, the init:
 * returns 0 once the job has exec'd, or -1 with the reason in out->said.
 * forked (may be NULL) hears of the init as soon as it exists. */
int launch_container(struct launch_plan *plan, const struct job_io *io, struct launched *out, void (*forked)(const struct launched *));
/* With the lock held and nothing running: cleans what a dead run (dead, or
 * NULL) left, then makes the job's cgroup with its limits. */
void launch_fresh_cgroup(const struct launch_plan *plan, const struct state *dead);
/* The `launch` verb (bpm run, trace --startup): the plan comes on fd and the
 * report goes back on it: "running PID" (nothing done), or "pid PID START",
 * then "ok" or "error: ...", and at the end "exit STATUS OOM-KILLS", once
 * the job's output is all copied (tee.h). Exits with the job's status. */
int launch_main(int fd);
#endif
