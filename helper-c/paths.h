#ifndef BPM_PATHS_H
#define BPM_PATHS_H
#include <stddef.h>
/* Paths under directories a job can write are resolved here, one component
 * at a time, never following a symlink: a job that swaps a directory for a
 * symlink while bpm works makes the walk fail, it cannot redirect it. One
 * walker serves host paths (from "/") and mount targets (from the new root).
 * The CLI resolves the symlinks that root owns (merged /usr, /var/vcap/sys
 * on a BOSH VM) before it writes a path into the plan. */

/* What a walk makes of missing components: nothing (the walk dies), or
 * directories (root's, 0755), the last one too or, with WALK_MAKE_FILE, a
 * regular file (root's, 0644). */
enum walk_make { WALK_FIND, WALK_MAKE_DIRS, WALK_MAKE_FILE };

/* Opens path (absolute; no "." or "..") beneath dir, which is not closed;
 * returns an O_PATH descriptor of its last component, whatever its type.
 * Dies naming the component on a symlink. label, when set, names what the
 * path is in every message ("mount target"); host paths go without. */
int walk_beneath(int dir, const char *path, enum walk_make make, const char *label);

/* A host path, walked from "/"; with mkdirs, missing components are made
 * as directories. */
int walk_path(const char *path, int mkdirs);

/* The /proc/self/fd path of a descriptor, into buf: how an O_PATH
 * descriptor is chmodded or mounted on. */
void fd_path(int fd, char *buf, size_t len);
#endif
