#ifndef BPM_STATE_H
#define BPM_STATE_H
#include "plan.h"
#include <sys/types.h>
/* What a start leaves on the tmpfs under ROOT/sys/run/bpm/JOB for the
 * commands after it: the pidfile monit reads (the init's pid, no newline)
 * and a state file of "key value" lines (src/runtime/state.ts reads it too). */

struct state {
    pid_t pid;
    unsigned long long start_time;  /* of pid, from /proc: tells it from a recycled pid */
    char shutdown_signal[8];        /* TERM or INT, as bpm.yml said at start */
    unsigned long long shutdown_timeout_ms;  /* shutdown_timeout as bpm.yml said at start; 0: not recorded (an older bpm's state) */
};

/* How start, stop and launch begin, once the plan is read: bpm.log opened,
 * the job's lock taken (held until the helper exits), and the state read
 * as state_read does. stopping: neither bpm.log nor the lock file can fail it. */
int state_enter(const struct plan *plan, struct state *out, int stopping);
/* 1 and *out filled if the plan's state file holds a state, else 0. */
int state_read(const struct plan *plan, struct state *out);
/* Whether the state's pid is alive and still the process that was started. */
int state_running(const struct state *state);
/* Writes state and pidfile, each whole or not at all; -1 with errno. */
int state_write(const struct plan *plan, pid_t pid, unsigned long long start_time);
/* Removes pidfile and state (not the exit record). */
void state_clear(const struct plan *plan);
#endif
