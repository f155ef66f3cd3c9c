/* bpm-reaper: what the container's init becomes once the job runs, so that
 * the only thing bpm keeps beside a job is this small loop, in the spirit of
 * tini: reap every child, forward signals to the job, record how the job
 * ended, exit with its status. The init exec's it already dropped to the
 * job's user with no capabilities and no_new_privs; the signals it forwards
 * are still blocked (the mask, and any signal already pending, survive exec).
 * Usage: bpm-init JOB-PID STATUS-FD OOM-FD (STATUS-FD -1: no exit record;
 * OOM-FD: the job's memory.events, or -1). */
#define _GNU_SOURCE
#include "../exitrecord.h"
#include "wire.h"
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const int forwarded[] = {FORWARDED_SIGNALS};

static long number(const char *s) {
    long v = 0, sign = 1;
    if (*s == '-') sign = -1, s++;
    if (!*s) return -2;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 100000000) return -2;
        v = v * 10 + (*s - '0');
    }
    return sign * v;
}

int main(int argc, char **argv) {
    prctl(PR_SET_NAME, "bpm-init", 0, 0, 0);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (argc != 4) return 125;
    pid_t job = (pid_t)number(argv[1]);
    int status_fd = (int)number(argv[2]), oom_fd = (int)number(argv[3]);
    if (job <= 0) return 125;
    sigset_t set;
    sigemptyset(&set);
    for (unsigned i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaddset(&set, forwarded[i]);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    for (;;) {
        /* Children first: the job may have ended before we were exec'd. */
        int w;
        pid_t pid;
        while ((pid = waitpid(-1, &w, WNOHANG)) > 0) {
            if (pid != job) continue;
            exit_record_write(status_fd, w, oom_fd);
            _exit(WIFEXITED(w) ? WEXITSTATUS(w) : WIFSIGNALED(w) ? 128 + WTERMSIG(w) : 255);
        }
        siginfo_t info;
        int sig = sigwaitinfo(&set, &info);
        if (sig > 0 && sig != SIGCHLD) kill(job, sig);
    }
}
