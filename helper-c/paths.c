#define _GNU_SOURCE
#include "paths.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PATH 4096

void fd_path(int fd, char *buf, size_t len) {
    int n = snprintf(buf, len, "/proc/self/fd/%d", fd);
    if (n < 0 || (size_t)n >= len) fail("fd path");
}

/* One walk: the path as given, and how its messages begin ("PATH: " or
 * "LABEL PATH: "). */
struct walk {
    const char *path;
    char says[MAX_PATH + 64];
};

/* Opens name in dir without following it, st its type; refuses a symlink by name. */
static int open_component(const struct walk *w, int dir, const char *name, size_t upto, struct stat *st) {
    int fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    if (fstat(fd, st)) die("%sstat %.*s", w->says, (int)upto, w->path);
    if (S_ISLNK(st->st_mode))
        fail("%s%.*s is a symlink (refused: it may have been planted by a job)", w->says, (int)upto, w->path);
    return fd;
}

/* Makes a missing component (a directory, or a file), then opens it. What
 * the walk made is root's, and reachable like any system directory; what
 * someone else made meanwhile is opened as it is. */
static int make_component(const struct walk *w, int dir, const char *name, size_t upto, int file, struct stat *st) {
    int made;
    if (file) {
        int f = openat(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
        made = f >= 0;
        if (made) close(f);
    } else {
        made = mkdirat(dir, name, 0700) == 0;
    }
    if (!made && errno != EEXIST) die("%screate %.*s", w->says, (int)upto, w->path);
    int fd = open_component(w, dir, name, upto, st);
    if (fd < 0 || !made) return fd;
    if (fchownat(fd, "", 0, 0, AT_EMPTY_PATH)) die("%schown %.*s", w->says, (int)upto, w->path);
    /* O_PATH descriptors take no fchmod: the same inode, through /proc. */
    char self[32];
    fd_path(fd, self, sizeof self);
    if (chmod(self, file ? 0644 : 0755)) die("%schmod %.*s", w->says, (int)upto, w->path);
    return fd;
}

int walk_beneath(int dir, const char *path, enum walk_make make, const char *label) {
    size_t len = strlen(path);
    if (len >= MAX_PATH) fail("%s%spath too long: %.64s...", label ? label : "", label ? " " : "", path);
    struct walk w = { .path = path };
    int n = label ? snprintf(w.says, sizeof w.says, "%s %s: ", label, path) : snprintf(w.says, sizeof w.says, "%s: ", path);
    if (n < 0 || (size_t)n >= sizeof w.says) fail("%s: label too long", path);
    if (path[0] != '/') fail("%snot an absolute path", w.says);
    char buf[MAX_PATH];
    memcpy(buf, path, len + 1);
    int fd = dir;
    for (char *comp = buf;; ) {
        comp += strspn(comp, "/"); /* "a//b" is "a/b" */
        if (!*comp) break;
        char *slash = strchr(comp, '/');
        if (slash) *slash = '\0';
        /* The last component: nothing but slashes after it. */
        int last = !slash || !slash[1 + strspn(slash + 1, "/")];
        size_t upto = (size_t)(comp - buf) + strlen(comp);
        if (!strcmp(comp, ".") || !strcmp(comp, "..")) fail("%snot a canonical path", w.says);
        struct stat st;
        int next = open_component(&w, fd, comp, upto, &st);
        if (next < 0 && errno == ENOENT && make != WALK_FIND)
            next = make_component(&w, fd, comp, upto, last && make == WALK_MAKE_FILE, &st);
        if (next < 0) die("%sopen %.*s", w.says, (int)upto, path);
        if (fd != dir) close(fd);
        fd = next;
        if (last) break;
        /* Every component but the last must be a directory to walk on. */
        if (!S_ISDIR(st.st_mode)) fail("%s%.*s is not a directory", w.says, (int)upto, path);
        comp = slash + 1;
    }
    /* "/" itself: a descriptor of dir's own for the caller to close. */
    if (fd == dir && (fd = dup(dir)) < 0) die("%sdup", w.says);
    return fd;
}

int walk_path(const char *path, int mkdirs) {
    int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) die("open /");
    int fd = walk_beneath(root, path, mkdirs ? WALK_MAKE_DIRS : WALK_FIND, NULL);
    close(root);
    return fd;
}
