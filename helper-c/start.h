#ifndef BPM_START_H
#define BPM_START_H
/* `start env|fd`: what `bpm start` becomes once the CLI has decided
 * everything (the CLI replaces itself with the helper, so no Node process
 * waits). With the job's lock: nothing if it runs; otherwise clean what a
 * dead run left, make the cgroup, open the logs, launch detached, record
 * state and pidfile, and log it. A failure undoes it all and exits 1 with
 * "Error: failed to start job-process: ..." on stderr. */
int start_main(const char *how);
#endif
