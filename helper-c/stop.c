/* `stop`: signal a container's init through a pidfd (immune to pid reuse),
 * and escalate on a schedule: signal, grace, QUIT, dump time, KILL. Prints
 * how it ended: "exited", "quit" or "killed"; "gone" if it was not running.
 * `stop lock`: take the job's lock on LOCK_FD, say "locked", then read the
 * arguments as one line on stdin (none: nothing to stop, exit 0). */
#define _GNU_SOURCE
#include "stop.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int exited_within(int pidfd, unsigned long long ms) {
    struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
    for (;;) {
        int timeout = ms > 0x7fffffff ? 0x7fffffff : (int)ms;
        int r = poll(&pfd, 1, timeout);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die("poll pidfd");
        return r > 0;
    }
}

static void send(int pidfd, int sig) {
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) && errno != ESRCH) die("signal %d", sig);
}

/* The arguments of `stop lock`, read from stdin once the lock is held. */
static int stop_locked(void) {
    take_lock(LOCK_FD);
    if (write_str(1, "locked\n")) die("report locked");
    char line[256];
    size_t n = 0;
    for (;;) {
        ssize_t got = read(0, line + n, sizeof line - 1 - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) die("read stop arguments");
        if (got == 0) break;
        n += (size_t)got;
        if (n == sizeof line - 1) fail("stop arguments too long");
    }
    if (n == 0) return 0; /* the CLI found nothing running */
    line[n] = '\0';
    char *args[7];
    int count = 0;
    for (char *save = NULL, *t = strtok_r(line, " \n", &save); t && count < 7; t = strtok_r(NULL, " \n", &save)) args[count++] = t;
    return stop_main(count, args);
}

int stop_main(int argc, char **argv) {
    if (argc == 1 && !strcmp(argv[0], "lock")) return stop_locked();
    unsigned long long pid, want_start, sig, grace, dump, killwait;
    if (argc != 6 || parse_u64(argv[0], &pid) || parse_u64(argv[1], &want_start) || parse_u64(argv[2], &sig) ||
        parse_u64(argv[3], &grace) || parse_u64(argv[4], &dump) || parse_u64(argv[5], &killwait) || pid == 0 ||
        pid > 0x7fffffff || sig == 0 || sig > 64)
        fail("usage: stop PID START-TIME SIGNAL GRACE-MS QUIT-MS KILL-MS");
    int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    if (pidfd < 0) {
        if (errno == ESRCH) return write_str(1, "gone\n"), 0;
        die("pidfd_open %llu", pid);
    }
    /* With the pidfd held the pid cannot be reused: check it is still ours. */
    unsigned long long started;
    if (proc_start_time(AT_FDCWD, (pid_t)pid, &started) || started != want_start) return write_str(1, "gone\n"), 0;

    send(pidfd, (int)sig);
    if (exited_within(pidfd, grace)) return write_str(1, "exited\n"), 0;
    send(pidfd, SIGQUIT);
    if (exited_within(pidfd, dump)) return write_str(1, "quit\n"), 0;
    send(pidfd, SIGKILL);
    if (!exited_within(pidfd, killwait)) fail("process %llu survived SIGKILL", pid);
    write_str(1, "killed\n");
    return 0;
}
