#ifndef BPM_CGROUP_H
#define BPM_CGROUP_H
#include "plan.h"
/* The job's cgroup, laid out by src/runtime/cgroups.ts (v1 or v2) and made,
 * emptied and removed here, with the job's lock held. */

/* Makes the job's directories (v2: with the controllers enabled on the way
 * down) and writes its limits. Dies on failure. */
void cgroup_create(const struct plan *plan);
/* Kills everything in the job's cgroup and removes its directories; the
 * parents stay. Returns 0, or -1 with a reason in why. */
int cgroup_remove(const struct plan *plan, char *why, size_t cap);
/* The same for a layout a record gave (what an earlier start made). */
int cgroup_remove_layout(const struct cgroup_plan *cg, char *why, size_t cap);
/* How many of the job's processes the kernel's OOM killer has killed, or -1. */
long long cgroup_oom_kills(const struct plan *plan);
#endif
