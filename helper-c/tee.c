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

/* One chunk from pipe i: to its log, then to the terminal. 1 if there was
 * one; 0 when nothing waits (EAGAIN) or the pipe is done (then closed). */
static int copy(struct tee *t, int i) {
    static char buf[64 << 10];
    ssize_t n;
    do n = read(t->from[i], buf, sizeof buf);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) return 0;
    if (n <= 0) {
        close(t->from[i]);
        t->from[i] = -1;
        return 0;
    }
    if (t->log[i] >= 0 && write_all(t->log[i], buf, (size_t)n)) {
        close(t->log[i]);
        t->log[i] = -1;
    }
    /* Not closed: 1 and 2 stay ours, or the next descriptor opened would take their place. */
    if (t->to[i] >= 0 && write_all(t->to[i], buf, (size_t)n)) t->to[i] = -1;
    return 1;
}

/* Copies until pidfd says its process exited; signals from sigfd go on to pid. */
static void pump(struct tee *t, int pidfd, int sigfd, pid_t pid) {
    for (;;) {
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

/* What the job's processes wrote before they died is in the pipes: read
 * without waiting for an end of file that a process outside the job (a
 * descriptor it passed on, a pre_start hook's child) could hold back for
 * ever, while we hold the job's lock. */
void tee_drain(struct tee *t) {
    for (int i = 0; i < 2; i++) {
        if (t->from[i] < 0) continue;
        int flags = fcntl(t->from[i], F_GETFL);
        if (flags < 0 || fcntl(t->from[i], F_SETFL, flags | O_NONBLOCK)) die("make the job's output pipe non-blocking");
        while (copy(t, i)) {}
        if (t->from[i] >= 0) close(t->from[i]);
        t->from[i] = -1;
    }
}

void tee_forget(const struct tee *t) {
    for (int i = 0; i < 2; i++) {
        if (t->from[i] >= 0) close(t->from[i]);
        if (t->log[i] >= 0) close(t->log[i]);
    }
}
