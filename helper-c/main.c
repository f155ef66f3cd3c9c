/* bpm-helper: the small part of bpm that Node cannot do. The CLI extracts it
 * and runs one verb per invocation; every decision was made by the CLI. */
#define _GNU_SOURCE
#include "bpmlog.h"
#include "dump.h"
#include "launch.h"
#include "shell.h"
#include "start.h"
#include "stop.h"
#include "util.h"
#include "wire.h"
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* Node ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored
 * across exec: the job, the hook and the shell would inherit that. Every
 * signal starts at its default here. */
static void default_signals(void) {
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
}

/* What a job can close or fill must not end us: a stderr or terminal gone
 * (bpm stop 2>&1 | head, bpm run JOB | head) or a log grown past the
 * caller's RLIMIT_FSIZE is an EPIPE or EFBIG to handle, not a death that
 * leaves the job running. Blocked, not ignored: the hook, the job and the
 * shell clear their signal mask before exec, whereas an ignored signal
 * would stay ignored in them. */
static void block_write_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigaddset(&set, SIGXFSZ);
    if (sigprocmask(SIG_BLOCK, &set, NULL)) die("sigprocmask");
}

int main(int argc, char **argv) {
    const char *verb = argc > 1 ? argv[1] : "";
    /* Run through /proc/self/fd/N, we would show in ps as "N": take the name
     * the CLI gave (bpm-init, bpm-shell) instead. */
    if (argc > 0 && argv[0][0] && !strchr(argv[0], '/')) prctl(PR_SET_NAME, argv[0], 0, 0, 0);
    default_signals();
    block_write_signals();
    if (!strcmp(verb, "version")) return write_str(1, HELPER_VERSION " " PLAN_VERSION "\n") ? 1 : 0;
    /* Whatever bpm's caller left open (monit, a script) goes no further: fds
     * 0-2 are all start, stop and log use (and 3, a plan sent on a pipe;
     * log reads its plan on 0); launch and shell also get the plan and
     * report (3) and the go-ahead (4) from the CLI. */
    int from_fd = argc == 3 && !strcmp(argv[2], "fd");
    if (!strcmp(verb, "start") || !strcmp(verb, "stop")) close_from(from_fd ? 4 : 3);
    else if (!strcmp(verb, "log")) close_from(3);
    else close_from(5);
    if (!strcmp(verb, "start") && argc == 3) return start_main(argv[2]);
    if (!strcmp(verb, "stop") && argc == 3) return stop_main(argv[2]);
    if (!strcmp(verb, "launch")) return launch_main(3);
    if (!strcmp(verb, "shell")) return shell_main(3);
    if (!strcmp(verb, "log")) return bpmlog_main(0);
    if (!strcmp(verb, "plan-dump") && argc == 3) return plan_dump_main(argv[2]);
    if (!strcmp(verb, "state-dump") && argc == 3) return state_dump_main(argv[2]);
    fail("usage: bpm-helper version | start env|fd | stop env|fd | launch | shell | log | plan-dump VERB | state-dump FILE");
}
