/* `shell`: enter a running container (its cgroups and namespaces) and run
 * the plan's program (bash) as the job, on a new pseudo-terminal that lives
 * inside the container. We stay outside its pid namespace, holding the
 * operator's terminal, and relay bytes between the two: the shell never gets
 * a descriptor of the host's terminal, so it cannot inject input into it. */
#define _GNU_SOURCE
#include "shell.h"
#include "identity.h"
#include "init.h"
#include "plan.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static struct enter_plan plan;
static struct termios saved_tty;
static int tty_raw;

/* Joins the target's namespaces; the mount namespace last, since entering it
 * changes what /proc and every other path mean. */
static void enter_namespaces(void) {
    static const struct { int flag; const char *name; } order[] = {
        {CLONE_NEWIPC, "ipc"}, {CLONE_NEWUTS, "uts"}, {CLONE_NEWPID, "pid"}, {CLONE_NEWNS, "mnt"},
    };
    int fds[4];
    for (int i = 0; i < 4; i++) {
        fds[i] = -1;
        if (!(plan.ns_flags & order[i].flag)) continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)plan.target, order[i].name);
        fds[i] = open(path, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) die("open %s", path);
    }
    for (int i = 0; i < 4; i++) {
        if (fds[i] < 0) continue;
        if (setns(fds[i], order[i].flag)) die("enter the container's %s namespace", order[i].name);
        close(fds[i]);
    }
}

static void restore_tty(void) {
    if (tty_raw) tcsetattr(0, TCSADRAIN, &saved_tty);
    tty_raw = 0;
}

static void copy_winsize(int master) {
    struct winsize ws;
    if (ioctl(0, TIOCGWINSZ, &ws) == 0) ioctl(master, TIOCSWINSZ, &ws);
}

/* The shell's side: a session of its own with the container's pty as its
 * controlling terminal, nothing else open, then the job's identity. */
static __attribute__((noreturn)) void start_shell(int slave) {
    if (setsid() < 0) die("setsid");
    if (ioctl(slave, TIOCSCTTY, 0)) die("make the pty the controlling terminal");
    /* The pty stays root's: the shell uses the descriptors it was given, and
     * the job's other processes (the same user) cannot open it by name or
     * through /proc to write into the operator's session. */
    if (fchmod(slave, 0600)) die("make the pty private");
    for (int fd = 0; fd < 3; fd++)
        if (dup2(slave, fd) < 0) die("dup2");
    if (slave > 2) close(slave);
    report_fd = -1;
    if (syscall(SYS_close_range, 3, ~0U, 0)) die("close descriptors");
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL)) die("sigprocmask");
    identity_become_job(&plan.id, plan.prog.cwd);
    extern char **environ;
    environ = (char **)plan.prog.envp;
    execvp(plan.prog.exe, (char *const *)plan.prog.argv);
    int e = errno;
    write_line(2, "bpm shell: exec %s: %s\n", plan.prog.exe, strerror(e));
    _exit(e == ENOENT ? 127 : 126);
}

/* Copies what is readable on `from` to `to`; returns bytes moved, 0 on EOF. */
static ssize_t pump(int from, int to) {
    char buf[16384];
    ssize_t n;
    do n = read(from, buf, sizeof buf);
    while (n < 0 && errno == EINTR);
    if (n > 0 && write_all(to, buf, (size_t)n)) return -1;
    return n;
}

/* Relays until the shell exits (or closes its terminal), then passes on what
 * it left in the pty; returns its status. */
static int relay(int master, pid_t child, int sigfd) {
    int in_open = 1, status = -1, master_done = 0;
    while (status < 0 && !master_done) {
        struct pollfd fds[3] = {{master, POLLIN, 0}, {sigfd, POLLIN, 0}, {in_open ? 0 : -1, POLLIN, 0}};
        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR) continue;
            die("poll");
        }
        if (fds[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sigfd, &si, sizeof si) != sizeof si) die("read signalfd");
            if (si.ssi_signo == SIGWINCH) copy_winsize(master);
            else if (si.ssi_signo != SIGCHLD) kill(-child, (int)si.ssi_signo);
            int w;
            if (waitpid(child, &w, WNOHANG) == child) status = shell_status(w);
        }
        if (fds[2].revents & (POLLIN | POLLHUP | POLLERR) && pump(0, master) <= 0) {
            /* End of piped input: end the shell's input the way ^D does. */
            in_open = 0;
            write_all(master, "\x04", 1);
        }
        /* EIO once every descriptor of the pty's other side is closed. */
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR) && pump(master, 1) <= 0) master_done = 1;
    }
    if (status < 0) {
        int w;
        while (waitpid(child, &w, 0) < 0 && errno == EINTR) {}
        status = shell_status(w);
    }
    struct pollfd last = {master, POLLIN, 0};
    while (!master_done && poll(&last, 1, 0) > 0 && (last.revents & POLLIN) && pump(master, 1) > 0) {}
    return status;
}

int shell_main(int fd) {
    report_fd = fd;
    enter_plan_read(fd, &plan);
    if (!plan.target) fail("shell: no target container");

    for (int i = 0; i < plan.n_cgroup_procs; i++) join_cgroup(plan.cgroup_procs[i]);
    enter_namespaces();

    /* The container's /dev/ptmx: its own devpts instance. The peer is opened
     * through the master, never by a path the job could have replaced. */
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) die("open the container's /dev/ptmx");
    int unlock = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock)) die("unlock pty");
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    if (slave < 0) die("open pty peer");
    copy_winsize(master);

    sigset_t set;
    sigemptyset(&set);
    int sigs[] = {SIGCHLD, SIGWINCH, SIGTERM, SIGHUP, SIGINT, SIGQUIT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaddset(&set, sigs[i]);
    if (sigprocmask(SIG_BLOCK, &set, NULL)) die("sigprocmask");
    int sigfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sigfd < 0) die("signalfd");

    pid_t child = fork(); /* lands in the container's pid namespace */
    if (child < 0) die("fork shell");
    if (child == 0) start_shell(slave);
    close(slave);
    write_str(fd, "ok\n");
    close(fd);
    report_fd = -1;

    if (isatty(0) && tcgetattr(0, &saved_tty) == 0) {
        struct termios raw = saved_tty;
        cfmakeraw(&raw);
        if (tcsetattr(0, TCSADRAIN, &raw) == 0) tty_raw = 1;
    }
    for (int f = 0; f < 2; f++) {
        int fl = fcntl(f, F_GETFL);
        if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(f, F_SETFL, fl & ~O_NONBLOCK);
    }
    int status = relay(master, child, sigfd);
    restore_tty();
    return status;
}
