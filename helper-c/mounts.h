#ifndef BPM_MOUNTS_H
#define BPM_MOUNTS_H
#include "plan.h"
/* Builds the container's root from the plan's mount operations and pivots
 * into it. Runs in the container's init, in its new mount namespace. */
void mounts_setup(const struct plan *plan);
#endif
