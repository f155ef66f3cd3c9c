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

/* Opens name in dir without following it; refuses a symlink by name. */
static int open_component(int dir, const char *name, const char *path, size_t upto) {
    int fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st)) die("stat %.*s", (int)upto, path);
    if (S_ISLNK(st.st_mode)) fail("%s: %.*s is a symlink (refused: it may have been planted by a job)", path, (int)upto, path);
    return fd;
}

int walk_path(const char *path, int mkdirs) {
    size_t len = strlen(path);
    if (path[0] != '/') fail("%s: not an absolute path", path);
    if (len >= MAX_PATH) fail("path too long: %.64s...", path);
    char buf[MAX_PATH];
    memcpy(buf, path, len + 1);
    int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) die("open /");
    char *comp = buf + 1;
    while (*comp) {
        char *slash = strchr(comp, '/');
        if (slash) *slash = '\0';
        size_t upto = (size_t)(comp - buf) + strlen(comp);
        if (!*comp || !strcmp(comp, ".") || !strcmp(comp, "..")) fail("%s: not a canonical path", path);
        /* Every component but the last must be a directory to walk on. */
        int next = open_component(fd, comp, path, upto);
        if (next < 0 && errno == ENOENT && mkdirs) {
            if (mkdirat(fd, comp, 0700) && errno != EEXIST) die("create %.*s", (int)upto, path);
            next = open_component(fd, comp, path, upto);
            /* Created by us: root's, and traversable like any system directory. */
            if (next >= 0 && fchownat(next, "", 0, 0, AT_EMPTY_PATH)) die("chown %.*s", (int)upto, path);
            char self[32];
            snprintf(self, sizeof self, "/proc/self/fd/%d", next);
            if (next >= 0 && chmod(self, 0755)) die("chmod %.*s", (int)upto, path);
        }
        if (next < 0) die("open %.*s", (int)upto, path);
        close(fd);
        fd = next;
        if (!slash) break;
        struct stat st;
        if (fstat(fd, &st)) die("stat %.*s", (int)upto, path);
        if (!S_ISDIR(st.st_mode)) fail("%s: %.*s is not a directory", path, (int)upto, path);
        comp = slash + 1;
    }
    return fd;
}
