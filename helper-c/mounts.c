/* The container's filesystem: a fresh tmpfs root, bind mounts and special
 * filesystems placed in plan order, then pivot_root. Mount targets are
 * resolved by the walker of paths.c, from the new root, one component at a
 * time without following symlinks, so nothing a job planted in a directory it
 * can write can redirect a mount. */
#define _GNU_SOURCE
#include "mounts.h"
#include "mountpoint.h"
#include "paths.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* How mount targets are named in the walker's messages. */
#define TARGET "mount target"

/* Mount flags that only take effect on a remount of a bind mount. */
#define REMOUNT_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)

static void bind(int rootfd, const struct op *op) {
    /* The source was resolved on the host and cloned before unsharing: what
     * is attached here is exactly what was checked, whatever the path says now. */
    if (op->tree_fd < 0) fail("plan: bind source %s was not resolved", op->src);
    struct stat st;
    if (fstat(op->tree_fd, &st)) die("stat %s", op->src);
    int dst = walk_beneath(rootfd, op->dst, S_ISDIR(st.st_mode) ? WALK_MAKE_DIRS : WALK_MAKE_FILE, TARGET);
    if (syscall(SYS_move_mount, op->tree_fd, "", dst, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH))
        die("bind mount %s on %s", op->src, op->dst);
    close(op->tree_fd);
    close(dst);
    char dp[64];
    dst = walk_beneath(rootfd, op->dst, WALK_FIND, TARGET);
    fd_path(dst, dp, sizeof dp);
    /* A clone of a host mount keeps its propagation: only a shared volume
     * stays a peer of the host's; everything else sees nothing new. */
    if (!(op->flags & MS_SHARED) && mount(NULL, dp, NULL, MS_REC | MS_PRIVATE, NULL)) die("make %s private", op->dst);
    if ((op->flags & REMOUNT_FLAGS) && mount(NULL, dp, NULL, MS_REMOUNT | MS_BIND | (op->flags & REMOUNT_FLAGS), NULL))
        die("remount %s", op->dst);
    close(dst);
}

static void filesystem(int rootfd, const struct op *op) {
    int dst = walk_beneath(rootfd, op->dst, WALK_MAKE_DIRS, TARGET);
    char dp[64];
    fd_path(dst, dp, sizeof dp);
    if (mount(op->src, dp, op->fstype, op->flags & ~MS_REC, *op->data ? op->data : NULL))
        die("mount %s on %s", op->fstype, op->dst);
    close(dst);
}

static void device(int rootfd, const struct op *op) {
    /* The node's parent is created (a tmpfs of ours); the node itself is new. */
    char parent[4096];
    const char *slash = strrchr(op->dst, '/');
    if (!slash || (size_t)(slash - op->dst) >= sizeof parent) fail("bad device path %s", op->dst);
    memcpy(parent, op->dst, (size_t)(slash - op->dst));
    parent[slash - op->dst] = '\0';
    int dir = walk_beneath(rootfd, parent, WALK_FIND, "device directory");
    if (mknodat(dir, slash + 1, S_IFCHR | op->mode, makedev(op->major, op->minor))) die("mknod %s", op->dst);
    if (fchmodat(dir, slash + 1, op->mode, 0)) die("chmod %s", op->dst);
    close(dir);
}

static void symlink_op(int rootfd, const struct op *op) {
    if (symlinkat(op->src, rootfd, op->dst)) die("symlink %s", op->dst);
}

/* After pivot_root: hide a path (an empty read-only tmpfs over a directory,
 * /dev/null over a file). Paths the kernel does not have are skipped. */
static void mask(const char *path) {
    struct stat st;
    if (lstat(path, &st)) {
        if (errno == ENOENT) return;
        die("stat %s", path);
    }
    if (S_ISDIR(st.st_mode)) {
        if (mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,nr_inodes=1"))
            die("mask %s", path);
    } else if (mount("/dev/null", path, NULL, MS_BIND, NULL)) {
        die("mask %s", path);
    }
}

static void readonly(const char *path) {
    if (mount(path, path, NULL, MS_BIND | MS_REC, NULL)) {
        if (errno == ENOENT) return;
        die("bind %s read-only", path);
    }
    if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
        die("remount %s read-only", path);
}

void mounts_setup(const struct mount_plan *fs) {
    /* Nothing we mount may propagate back to the host. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) die("make / private");
    /* nosuid while it is being filled; its final options come with the last operation. */
    if (mount("tmpfs", fs->rootfs, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m,nr_inodes=4096"))
        die("mount root tmpfs on %s", fs->rootfs);
    int rootfd = open(fs->rootfs, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rootfd < 0) die("open root %s", fs->rootfs);

    int i = 0;
    for (; i < fs->n_ops; i++) {
        const struct op *op = &fs->ops[i];
        if (op->kind == OP_BIND) bind(rootfd, op);
        else if (op->kind == OP_FS) filesystem(rootfd, op);
        else if (op->kind == OP_MKNOD) device(rootfd, op);
        else if (op->kind == OP_SYMLINK) symlink_op(rootfd, op);
        else break;
    }

    if (fchdir(rootfd)) die("chdir to new root");
    if (syscall(SYS_pivot_root, ".", ".")) die("pivot_root");
    if (umount2(".", MNT_DETACH)) die("detach old root");
    if (chdir("/")) die("chdir /");
    close(rootfd);

    for (; i < fs->n_ops; i++) {
        const struct op *op = &fs->ops[i];
        if (op->kind == OP_MASK) mask(op->dst);
        else if (op->kind == OP_READONLY) readonly(op->dst);
        else if (op->kind == OP_ROOT_RO) {
            /* The root's final options are the plan's (a privileged job's root is not nosuid). */
            if (mount(NULL, "/", NULL, MS_REMOUNT | (op->flags & REMOUNT_FLAGS), NULL)) die("remount / read-only");
        } else fail("plan: mount operation %d out of order", i);
    }
}

/* Makes a host directory a shared mount point: a bind onto itself the first
 * time only (later starts find the mount point), then MS_SHARED. */
static void share(const char *path) {
    int fd = walk_path(path, 0);
    int root = is_mount_root(fd);
    if (root < 0) die("cannot tell whether %s is a mount point", path);
    char fp[64];
    fd_path(fd, fp, sizeof fp);
    if (!root && mount(fp, fp, NULL, MS_BIND, NULL)) die("share %s: bind it onto itself", path);
    close(fd);
    fd = walk_path(path, 0);
    fd_path(fd, fp, sizeof fp);
    if (mount(NULL, fp, NULL, MS_SHARED, NULL)) die("share %s: make it shared", path);
    close(fd);
}

void mounts_clone_sources(struct mount_plan *fs) {
    int share_lock = -1;
    for (int i = 0; i < fs->n_ops; i++) {
        struct op *op = &fs->ops[i];
        if (op->kind != OP_BIND) continue;
        if (op->flags & MS_SHARED) {
            /* Two first starts at once must not make two host mounts. */
            if (share_lock < 0 && fs->share_lock) share_lock = lock_path(fs->share_lock, 0);
            share(op->src);
        }
        int fd = walk_path(op->src, 0);
        /* A clone of a shared mount stays in its peer group: mounts propagate. */
        op->tree_fd = (int)syscall(SYS_open_tree, fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
        if (op->tree_fd < 0) die("clone the host mount of %s", op->src);
        close(fd);
    }
    if (share_lock >= 0) close(share_lock);
}
