/* bpm-helper: the small part of bpm that Node cannot do. The CLI extracts it
 * and runs one verb per invocation; every decision was made by the CLI. */
#include "launch.h"
#include "shell.h"
#include "stop.h"
#include "util.h"
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* `lock`: take the flock on stdin, a lock file the CLI opened; it stays
 * with the CLI after we exit. */
static int lock_main(void) {
    take_lock(0);
    return 0;
}

int main(int argc, char **argv) {
    const char *verb = argc > 1 ? argv[1] : "";
    /* Run through /proc/self/fd/N, we would show in ps as "N": take the name
     * the CLI gave (bpm-init, bpm-shell) instead. */
    if (argc > 0 && argv[0][0] && !strchr(argv[0], '/')) prctl(PR_SET_NAME, argv[0], 0, 0, 0);
    if (!strcmp(verb, "version")) return write_str(1, HELPER_VERSION " " PLAN_VERSION "\n") ? 1 : 0;
    /* Whatever bpm's caller left open (monit, a script) goes no further:
     * fds 0-2, the plan (3), the go-ahead (4) and the lock (5) are all we use. */
    close_from(6);
    if (!strcmp(verb, "lock")) return lock_main();
    if (!strcmp(verb, "launch")) return launch_main(3, argc > 2 && !strcmp(argv[2], "lock"));
    if (!strcmp(verb, "stop")) return stop_main(argc - 2, argv + 2);
    if (!strcmp(verb, "shell")) return shell_main(3);
    fail("usage: bpm-helper version|lock|launch [lock]|stop [lock]|shell ...");
}
