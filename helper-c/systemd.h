#ifndef BPM_SYSTEMD_H
#define BPM_SYSTEMD_H
#include "plan.h"
#include <stddef.h>
#include <sys/types.h>
/* The job's transient scope, where systemd is the cgroup manager (src/plan/
 * cgroup.ts decides, and lists the scope's properties): asked for and
 * stopped over D-Bus on systemd's private socket, as runc's and crun's
 * systemd drivers do, so that systemd makes the job's cgroup in every
 * hierarchy and never moves or kills it with the unit that ran bpm. */

/* Starts the scope cg->scope with cg's properties around pid, and waits
 * until systemd has placed pid in it. A scope of that name left by an
 * earlier start is stopped first. Returns 0, or -1 with a reason in why. */
int scope_start(const struct cgroup_plan *cg, pid_t pid, char *why, size_t cap);
/* Stops the scope (its processes are already gone) and forgets a failure
 * of it, waiting a bounded time for systemd to finish; a scope systemd no
 * longer has, or a systemd that does not answer, is not an error: what
 * systemd does not remove, cgroup.c does. */
void scope_stop(const char *unit);
/* Whether unit is a name bpm gives a job's scope (runc-[HASH12-]bpm-ID.scope):
 * a record or a plan naming any other unit is not acted on. */
int scope_name_ok(const char *unit);
#endif
