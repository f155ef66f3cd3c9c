#ifndef BPM_PATHS_H
#define BPM_PATHS_H
#include <sys/types.h>
/* Host paths under directories a job can write are resolved here, one
 * component at a time from "/", never following a symlink: a job that swaps
 * a directory for a symlink while bpm works makes the walk fail, it cannot
 * redirect it. The CLI resolves the symlinks that root owns (merged /usr,
 * /var/vcap/sys on a BOSH VM) before it writes a path into the plan. */

/* Opens an absolute path; returns an O_PATH descriptor of its last
 * component, whatever its type. With mkdirs, missing components are created
 * as directories (root's, 0755). Dies naming the component on a symlink. */
int walk_path(const char *path, int mkdirs);
#endif
