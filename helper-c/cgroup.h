#ifndef BPM_CGROUP_H
#define BPM_CGROUP_H
#include "plan.h"
/* The job's cgroup, laid out by src/runtime/cgroups.ts (v1 or v2) and made,
 * emptied and removed here, with the job's lock held. */

/* Makes the job's directories (v2: with the controllers enabled on the way
 * down) and writes its limits. Dies on failure. */
void cgroup_create(const struct cgroup_plan *cg);
/* Lifts what would slow a killed job's exit: the CPU ceiling and weight,
 * and any freeze, in the job's own directories. */
void cgroup_unthrottle(const struct cgroup_plan *cg);
/* How often a stop that waits on a killed job tells the operator what is left. */
#define CGROUP_SAY_LEFT_MS 10000ULL
/* Tells the operator on stderr what is left of the job seconds after its KILL. */
void cgroup_say_left(const struct cgroup_plan *cg, unsigned seconds);
/* Unthrottles the job and kills everything in its cgroup, and waits as long
 * as it takes for it to be empty, saying on stderr what is left every
 * CGROUP_SAY_LEFT_MS (stop: a stop always ends with the job gone). */
void cgroup_empty(const struct cgroup_plan *cg);
/* Unthrottles and kills everything in the job's cgroup (as a plan lays it
 * out, or as a record names what an earlier start made) and removes its
 * directories; the parents stay. Returns 0, or -1 with a reason in why (a
 * process that outlived a bounded wait, a directory that would not go). */
int cgroup_remove(const struct cgroup_plan *cg, char *why, size_t cap);
/* How many of the job's processes the kernel's OOM killer has killed, or -1. */
long long cgroup_oom_kills(const struct cgroup_plan *cg);
/* The same count for a systemd scope's parent (the plan's parent OOM file;
 * -1 without one): it still tells of the job once the scope's cgroup is gone. */
long long cgroup_parent_oom_kills(const struct cgroup_plan *cg);
#endif
