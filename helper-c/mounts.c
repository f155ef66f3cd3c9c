/* The container's filesystem: a fresh tmpfs root, bind mounts and special
 * filesystems placed in plan order, then pivot_root. Mount targets are
 * resolved one component at a time without following symlinks, so nothing a
 * job planted in a directory it can write can redirect a mount. */
#define _GNU_SOURCE
#include "mounts.h"
#include "mountpoint.h"
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

enum create { NO_CREATE, CREATE_DIR, CREATE_FILE };

/* Opens rel (relative to dirfd) as O_PATH, refusing symlinks, creating missing
 * components as directories (and the last as a file when asked). */
static int open_beneath(int dirfd, const char *rel, enum create create) {
    char path[4096];
    if (strlen(rel) >= sizeof path) fail("mount target too long: %s", rel);
    strcpy(path, rel);
    int fd = dup(dirfd);
    if (fd < 0) die("dup");
    char *save = NULL;
    for (char *comp = strtok_r(path, "/", &save); comp; ) {
        char *next = strtok_r(NULL, "/", &save);
        if (!strcmp(comp, "..") || !strcmp(comp, ".")) fail("mount target %s has a . or .. component", rel);
        int last = next == NULL;
        int nfd = openat(fd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC | (last ? 0 : O_DIRECTORY));
        if (nfd < 0 && errno == ENOENT && create != NO_CREATE) {
            if (last && create == CREATE_FILE) {
                int f = openat(fd, comp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (f < 0) die("create mount point %s", rel);
                close(f);
            } else if (mkdirat(fd, comp, 0755) && errno != EEXIST) {
                die("create mount point %s", rel);
            }
            nfd = openat(fd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC | (last ? 0 : O_DIRECTORY));
        }
        if (nfd < 0) die("open mount target %s (at \"%s\")", rel, comp);
        struct stat st;
        if (fstat(nfd, &st)) die("stat %s", rel);
        if (S_ISLNK(st.st_mode)) fail("mount target %s crosses a symlink at \"%s\"", rel, comp);
        close(fd);
        fd = nfd;
        comp = next;
    }
    return fd;
}

static void fd_path(int fd, char *buf, size_t len) {
    int n = snprintf(buf, len, "/proc/self/fd/%d", fd);
    if (n < 0 || (size_t)n >= len) fail("fd path");
}

/* Mount flags that only take effect on a remount of a bind mount. */
#define REMOUNT_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)

static void bind(int rootfd, const struct op *op) {
    /* The source's last component must not be a symlink (it may sit in a
     * directory the job can write); the CLI resolved trusted prefixes. */
    int src = open(op->src, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (src < 0) die("bind source %s", op->src);
    struct stat st;
    if (fstat(src, &st)) die("stat %s", op->src);
    if (S_ISLNK(st.st_mode)) fail("bind source %s is a symlink", op->src);
    int dst = open_beneath(rootfd, op->dst, S_ISDIR(st.st_mode) ? CREATE_DIR : CREATE_FILE);
    char sp[64], dp[64];
    fd_path(src, sp, sizeof sp);
    fd_path(dst, dp, sizeof dp);
    if (op->tree_fd >= 0) {
        /* The host's own mount, cloned before unshare: stays in its peer group. */
        if (syscall(SYS_move_mount, op->tree_fd, "", dst, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH))
            die("attach shared volume %s on %s", op->src, op->dst);
        close(op->tree_fd);
    } else if (mount(sp, dp, NULL, MS_BIND | MS_REC, NULL)) {
        die("bind mount %s on %s", op->src, op->dst);
    }
    close(dst);
    close(src);
    if (op->flags & REMOUNT_FLAGS) {
        dst = open_beneath(rootfd, op->dst, NO_CREATE);
        fd_path(dst, dp, sizeof dp);
        if ((op->flags & REMOUNT_FLAGS) &&
            mount(NULL, dp, NULL, MS_REMOUNT | MS_BIND | (op->flags & REMOUNT_FLAGS), NULL))
            die("remount %s", op->dst);
        close(dst);
    }
}

static void filesystem(int rootfd, const struct op *op) {
    int dst = open_beneath(rootfd, op->dst, CREATE_DIR);
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
    int dir = open_beneath(rootfd, parent, NO_CREATE);
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

void mounts_setup(const struct plan *p) {
    /* Nothing we mount may propagate back to the host. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) die("make / private");
    if (mount("tmpfs", p->rootfs, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m,nr_inodes=4096"))
        die("mount root tmpfs on %s", p->rootfs);
    int rootfd = open(p->rootfs, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rootfd < 0) die("open root %s", p->rootfs);

    int i = 0;
    for (; i < p->n_ops; i++) {
        const struct op *op = &p->ops[i];
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

    for (; i < p->n_ops; i++) {
        const struct op *op = &p->ops[i];
        if (op->kind == OP_MASK) mask(op->dst);
        else if (op->kind == OP_READONLY) readonly(op->dst);
        else if (op->kind == OP_ROOT_RO) {
            if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL)) die("remount / read-only");
        } else fail("plan: mount operation %d out of order", i);
    }
}

void mounts_clone_shared(struct plan *p) {
    for (int i = 0; i < p->n_ops; i++) {
        struct op *op = &p->ops[i];
        if (op->kind != OP_BIND || !(op->flags & MS_SHARED)) continue;
        int fd = (int)syscall(SYS_open_tree, AT_FDCWD, op->src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW);
        if (fd < 0) die("clone the host mount of shared volume %s", op->src);
        op->tree_fd = fd;
    }
}

int mounts_share_main(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        const char *path = argv[i];
        if (path[0] != '/') fail("share: %s is not absolute", path);
        int fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) die("share: open %s", path);
        int root = is_mount_root(fd);
        if (root < 0) die("share: cannot tell whether %s is a mount point", path);
        char fp[64];
        fd_path(fd, fp, sizeof fp);
        /* Only the first time: a bind onto itself. Later starts find the mount point. */
        if (!root && mount(fp, fp, NULL, MS_BIND, NULL)) die("share: bind %s", path);
        close(fd);
        fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) die("share: reopen %s", path);
        fd_path(fd, fp, sizeof fp);
        if (mount(NULL, fp, NULL, MS_SHARED, NULL)) die("share: make %s shared", path);
        close(fd);
    }
    return 0;
}
