/* Whether a directory is the root of a mount. Its own file: the kernel's
 * struct statx header cannot share a unit with libc's <sys/stat.h>, and musl
 * has no statx() wrapper. */
#define _GNU_SOURCE
#include "mountpoint.h"
#include <fcntl.h>
#include <linux/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int is_mount_root(int fd) {
    struct statx stx;
    if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH, 0, &stx)) return -1;
    if (!(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)) return -1;
    return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
}
