/* pid 1 of the container, in the spirit of tini: one loop that reaps every
 * child and forwards signals to the job, and exits with the job's status. */
#define _GNU_SOURCE
#include "init.h"
#include "exitrecord.h"
#include "identity.h"
#include "mounts.h"
#include "util.h"
#include "wire.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const int forwarded_signals[] = {FORWARDED_SIGNALS, 0};
extern char **environ;

void block_signals(sigset_t *set, sigset_t *old) {
    sigemptyset(set);
    for (const int *s = forwarded_signals; *s; s++) sigaddset(set, *s);
    sigaddset(set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, set, old)) die("sigprocmask");
}

/* Waits for one of set's signals: forwards each to `to` and returns on SIGCHLD. */
static void forward_until_child(const sigset_t *set, pid_t to) {
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(set, &info);
        if (sig < 0) {
            if (errno == EINTR) continue;
            die("sigwaitinfo");
        }
        if (sig == SIGCHLD) return;
        kill(to, sig);
    }
}

int shell_status(int w) {
    if (WIFEXITED(w)) return WEXITSTATUS(w);
    if (WIFSIGNALED(w)) return 128 + WTERMSIG(w);
    return 255;
}

/* The job's process: become the job and exec it. Errors go up the exec pipe. */
static __attribute__((noreturn)) void start_job(const struct launch_plan *p, int err_fd) {
    report_fd = err_fd;
    /* The job starts with no signal blocked, whatever bpm was handed. */
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL)) die("sigprocmask");
    /* Nothing but 0, 1 and 2 may reach the job (the exec pipe closes on exec). */
    cloexec_from(3);
    identity_become_job(&p->id, p->prog.cwd);
    if (p->pause) {
        /* Startup tracing: stay put, already the job in every respect, until
         * the CLI says the tracer is attached; the next syscall is execve. */
        char go;
        ssize_t n;
        do n = read(GO_FD, &go, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1) fail("the tracer never became ready");
        close(GO_FD);
    }
    environ = (char **)p->prog.envp;
    execvp(p->prog.exe, (char *const *)p->prog.argv);
    int code = (errno == ENOENT || errno == ENOTDIR) ? 127 : 126;
    char line[512];
    int n = snprintf(line, sizeof line, "error: exec %s: %s\n", p->prog.exe, strerror(errno));
    if (n > 0) write_all(err_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    _exit(code);
}

/* The init stays for the job's whole life: it gives back what setting up
 * the container took, so that it stays near tini's size. The plan goes; the
 * code and constants (never written, so safe to drop) come back a page at a
 * time as the loop needs them, without the kernel's fault-around; and the
 * stack below this frame, which the set-up's deep calls used, is zero again. */
static void shrink(const struct launch_plan *p) {
    plan_release(p);
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    int maps = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (maps >= 0) {
        char buf[4096];
        ssize_t n = read(maps, buf, sizeof buf - 1);
        close(maps);
        buf[n > 0 ? n : 0] = '\0';
        for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            /* "from-to perms offset dev inode path": our own file's read-only mappings. */
            char *p = line;
            unsigned long from = strtoul(p, &p, 16);
            if (*p++ != '-') continue;
            unsigned long to = strtoul(p, &p, 16);
            if (strncmp(p, " r-xp ", 6) && strncmp(p, " r--p ", 6)) continue;
            p += 6;
            for (int field = 0; field < 2 && p; field++) p = strchr(p + 1, ' ');
            if (!p || strtoul(p, NULL, 10) == 0) continue;
            madvise((void *)from, to - from, MADV_RANDOM);
            madvise((void *)from, to - from, MADV_DONTNEED);
        }
    }
    char here;
    uintptr_t frame = (uintptr_t)&here & ~(page - 1);
    /* Below the stack's start the call fails for what is not mapped; what is, is dropped. */
    madvise((void *)(frame - 16 * page), 16 * page, MADV_DONTNEED);
}

/* Exec's the reaper (helper-c/reaper/): the same loop as below in a program
 * a fraction of our size, so that a fresh, small process image is all that
 * stays beside the job. Already the job's user; signals stay blocked across
 * exec, a child that exited meanwhile waits as a zombie. On failure we stay. */
static void become_reaper(const struct launch_plan *p, pid_t job, int status_fd, int oom_fd) {
    if (p->reaper_fd < 0) return;
    if (status_fd >= 0 && fcntl(status_fd, F_SETFD, 0)) return;
    if (oom_fd >= 0 && fcntl(oom_fd, F_SETFD, 0)) return;
    char pid[16], fd[16], oom[16];
    snprintf(pid, sizeof pid, "%d", (int)job);
    snprintf(fd, sizeof fd, "%d", status_fd);
    snprintf(oom, sizeof oom, "%d", oom_fd);
    char *argv[] = {"bpm-init", pid, fd, oom, NULL};
    char *envp[] = {NULL};
    syscall(SYS_execveat, p->reaper_fd, "", argv, envp, AT_EMPTY_PATH);
    if (status_fd >= 0) fcntl(status_fd, F_SETFD, FD_CLOEXEC);
    if (oom_fd >= 0) fcntl(oom_fd, F_SETFD, FD_CLOEXEC);
}

void init_main(const struct launch_plan *p, int status_fd) {
    /* The job's OOM count, for the exit record: opened while the host's
     * cgroup tree is still in reach. */
    int oom_fd = status_fd >= 0 && p->cg.oom_file ? open(p->cg.oom_file, O_RDONLY | O_CLOEXEC) : -1;
    if (p->subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) die("become subreaper");
    if (p->fs.rootfs) mounts_setup(&p->fs);

    sigset_t set;
    block_signals(&set, NULL);
    int exec_pipe[2];
    if (pipe2(exec_pipe, O_CLOEXEC)) die("pipe");
    pid_t job = fork();
    if (job < 0) die("fork job");
    if (job == 0) {
        close(exec_pipe[0]);
        if (status_fd >= 0) close(status_fd);
        if (oom_fd >= 0) close(oom_fd);
        close(report_fd);
        start_job(p, exec_pipe[1]);
    }
    close(exec_pipe[1]);
    if (p->pause) close(GO_FD);
    identity_drop_init(&p->id);

    /* The pipe closes on a successful exec; anything read is the job's error. */
    char err[600];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(exec_pipe[0], err + got, sizeof err - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
        if (got >= sizeof err - 1) break;
    }
    close(exec_pipe[0]);
    if (got > 0) {
        write_all(report_fd, err, got);
        int w;
        while (waitpid(job, &w, 0) < 0 && errno == EINTR) {}
        _exit(shell_status(w));
    }
    /* The job's limits on the init too, as tini inherited them: operators read
     * them off the pidfile's process. Only now, with every descriptor the init
     * needs already open: a low open-files limit must not stop it. */
    identity_set_rlimits(&p->id);
    write_str(report_fd, "ok\n");
    close(report_fd);
    report_fd = -1;
    become_reaper(p, job, status_fd, oom_fd);
    shrink(p);

    for (;;) {
        forward_until_child(&set, job);
        for (;;) {
            int w;
            pid_t pid = waitpid(-1, &w, WNOHANG);
            if (pid <= 0) break;
            if (pid == job) {
                exit_record_write(status_fd, w, oom_fd);
                _exit(shell_status(w));
            }
        }
    }
}
