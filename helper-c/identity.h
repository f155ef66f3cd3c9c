#ifndef BPM_IDENTITY_H
#define BPM_IDENTITY_H
#include "plan.h"
/* Becomes the job: rlimits, groups, uid/gid, exactly the plan's capabilities
 * (bounding, permitted, inheritable, effective, ambient), no_new_privs, the
 * working directory cwd (entered as the job; NULL: stay), and the seccomp
 * filter last. Called in the job's process right before exec. */
void identity_become_job(const struct identity_plan *id, const char *cwd);
/* The identity's rlimits on the calling process. */
void identity_set_rlimits(const struct identity_plan *id);
/* Drops the init to the job's user with no capabilities at all (root, for a
 * privileged job: then with the job's capabilities, no more). */
void identity_drop_init(const struct identity_plan *id);
#endif
