#define _GNU_SOURCE
#include "tee.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

void tee_open(struct tee *t, int out_log, int err_log, int *out, int *err) {
    int p[2][2];
    for (int i = 0; i < 2; i++)
        if (pipe2(p[i], O_CLOEXEC)) die("pipe");
    *t = (struct tee){{p[0][0], p[1][0]}, {out_log, err_log}, {1, 2}};
    *out = p[0][1];
    *err = p[1][1];
}

/* One chunk from pipe i: to its log, then to the terminal. */
static void copy(struct tee *t, int i) {
    static char buf[64 << 10];
    ssize_t n = read(t->from[i], buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
        close(t->from[i]);
        t->from[i] = -1;
        return;
    }
    if (t->log[i] >= 0 && write_all(t->log[i], buf, (size_t)n)) {
        close(t->log[i]);
        t->log[i] = -1;
    }
    /* Not closed: 1 and 2 stay ours, or the next descriptor opened would take their place. */
    if (t->to[i] >= 0 && write_all(t->to[i], buf, (size_t)n)) t->to[i] = -1;
}

/* Copies until pidfd says its process exited (or, with pidfd -1, until both
 * pipes are at end of file); signals from sigfd go on to pid. */
static void pump(struct tee *t, int pidfd, int sigfd, pid_t pid) {
    while (pidfd >= 0 || t->from[0] >= 0 || t->from[1] >= 0) {
        /* poll() passes over the negative descriptors. */
        struct pollfd fds[4] = {{t->from[0], POLLIN, 0}, {t->from[1], POLLIN, 0}, {sigfd, POLLIN, 0}, {pidfd, POLLIN, 0}};
        if (poll(fds, 4, -1) < 0) {
            if (errno == EINTR) continue;
            die("poll");
        }
        for (int i = 0; i < 2; i++)
            if (fds[i].revents) copy(t, i);
        if (fds[2].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sigfd, &si, sizeof si) != (ssize_t)sizeof si) die("read signalfd");
            kill(pid, (int)si.ssi_signo);
        }
        if (fds[3].revents) return;
    }
}

int tee_wait(struct tee *t, pid_t pid, int sigfd) {
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) die("pidfd_open %d", (int)pid);
    pump(t, pidfd, sigfd, pid);
    close(pidfd);
    int w;
    while (waitpid(pid, &w, 0) < 0)
        if (errno != EINTR) die("wait for %d", (int)pid);
    return w;
}

void tee_drain(struct tee *t) {
    pump(t, -1, -1, 0);
}

void tee_forget(const struct tee *t) {
    for (int i = 0; i < 2; i++) {
        if (t->from[i] >= 0) close(t->from[i]);
        if (t->log[i] >= 0) close(t->log[i]);
    }
}
