#ifndef BPM_MOUNTS_H
#define BPM_MOUNTS_H
#include "plan.h"
/* Builds the container's root from the mount operations and pivots into
 * it. Runs in the container's init, in its new mount namespace. */
void mounts_setup(const struct mount_plan *fs);
/* Before unsharing, on the host: resolves every bind source with walk_path
 * (making shared volumes shared mount points first) and clones its mount
 * with open_tree, for the init to attach: the container gets exactly what
 * was resolved, whatever a job does to the path afterwards. */
void mounts_clone_sources(struct mount_plan *fs);
#endif
