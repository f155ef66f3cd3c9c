#ifndef BPM_MOUNTS_H
#define BPM_MOUNTS_H
#include "plan.h"
/* Builds the container's root from the plan's mount operations and pivots
 * into it. Runs in the container's init, in its new mount namespace. */
void mounts_setup(const struct plan *plan);
/* Before unsharing: clones the host mount of every shared volume, so that
 * the container's copy joins the host's peer group (mounts propagate). */
void mounts_clone_shared(struct plan *plan);
/* `share PATH...`: makes each host directory a shared mount point (a bind
 * onto itself the first time only), so jobs' shared volumes can be peers. */
int mounts_share_main(int argc, char **argv);
#endif
