/* What a start does on the host before the container: directories and the
 * pre_start hook. Every path goes through walk_path, and ownership and mode
 * are set on the descriptor it returned, never by path. */
#define _GNU_SOURCE
#include "prepare.h"
#include "launch.h"
#include "init.h"
#include "paths.h"
#include "tee.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void prepare(const struct prep *d) {
    int fd = walk_path(d->path, 1);
    struct stat st;
    if (fstat(fd, &st)) die("stat %s", d->path);
    if (!S_ISDIR(st.st_mode) && !d->file_ok) fail("%s exists and is not a directory", d->path);
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) fail("%s is a device (volumes are mounted nodev)", d->path);
    /* A file volume gets the job's owner, as the original gave it; its mode stays. */
    if (S_ISREG(st.st_mode) && st.st_nlink > 1) fail("%s has %lu hard links (refused: one may be a host file)", d->path, (unsigned long)st.st_nlink);
    if (fchownat(fd, "", d->uid, d->gid, AT_EMPTY_PATH)) die("chown %s", d->path);
    if (S_ISDIR(st.st_mode)) {
        /* O_PATH descriptors take no fchmod: the same inode, through /proc. */
        char self[32];
        snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
        if (chmod(self, d->mode)) die("chmod %s", d->path);
    }
    close(fd);
}

void prepare_dirs(const struct prepare_plan *p) {
    for (int i = 0; i < p->n_dirs; i++) prepare(&p->dirs[i]);
}

void prepare_run_hook(const struct prepare_plan *p, const struct job_io *io) {
    if (!p->hook) return;
    /* Closed by a successful exec; otherwise it carries the exec's errno. */
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC)) die("prestart hook failed: pipe");
    pid_t pid = fork();
    if (pid < 0) die("prestart hook failed: fork");
    if (pid == 0) {
        on_fatal = NULL;
        close(errpipe[0]);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0 && devnull != 0) {
            dup2(devnull, 0);
            close(devnull);
        }
        if ((io->out != 1 && dup2(io->out, 1) < 0) || (io->err != 2 && dup2(io->err, 2) < 0)) _exit(127);
        extern char **environ;
        environ = (char **)p->hook_envp;
        /* Not bpm's caller's directory, which may be anywhere. */
        if (chdir("/")) _exit(127);
        char *const argv[] = {(char *)p->hook, NULL};
        execvp(p->hook, argv);
        int e = errno;
        write_all(errpipe[1], &e, sizeof e);
        _exit(127);
    }
    close(errpipe[1]);
    int e = 0;
    ssize_t n;
    do n = read(errpipe[0], &e, sizeof e);
    while (n < 0 && errno == EINTR);
    close(errpipe[0]);
    int w;
    /* In the foreground its output is copied meanwhile: a full pipe would hold it (and us) forever. */
    if (io->tee) w = tee_wait(io->tee, pid, -1);
    else
        while (waitpid(pid, &w, 0) < 0)
            if (errno != EINTR) die("prestart hook failed: wait");
    if (n == (ssize_t)sizeof e) fail("prestart hook failed: exec %s: %s", p->hook, strerror(e));
    if (w != 0) fail("prestart hook failed: exit status %d", shell_status(w));
}
