#ifndef BPM_IDENTITY_H
#define BPM_IDENTITY_H
#include "plan.h"
/* Becomes the job: rlimits, groups, uid/gid, exactly the plan's capabilities
 * (bounding, permitted, inheritable, effective, ambient), no_new_privs, and
 * the seccomp filter last. Called in the job's process right before exec. */
void identity_become_job(const struct plan *plan);
/* The plan's rlimits on the calling process. */
void identity_set_rlimits(const struct plan *plan);
/* Drops the init to the job's user with no capabilities at all (root, for a
 * privileged job: then with the job's capabilities, no more). */
void identity_drop_init(const struct plan *plan);
#endif
