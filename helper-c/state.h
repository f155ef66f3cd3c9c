#ifndef BPM_STATE_H
#define BPM_STATE_H
#include "plan.h"
#include <sys/types.h>
/* What a start leaves on the tmpfs under ROOT/sys/run/bpm/JOB for the
 * commands after it: the pidfile monit reads (the init's pid, no newline)
 * and the record of what start made. The record's format is
 * src/plan/record.ts's: a version line, then "key value" lines (values
 * escape "%" and line breaks as %XX). Start writes it: a header of what only
 * the helper knows (pid, start time, boot id, when), then the body the CLI
 * composed. This side reads what stop and start need of it. */

struct state {
    int version;                    /* 3, or 2: what the previous bpm wrote */
    pid_t pid;
    unsigned long long start_time;  /* of pid, from /proc: tells it from a recycled pid */
    char boot_id[40];               /* the boot pid ran in; empty in a version 2 record */
    char shutdown_signal[8];        /* TERM or INT, as bpm.yml said at start */
    unsigned long long shutdown_timeout_ms;  /* shutdown_timeout as bpm.yml said at start; 0: not recorded */
    /* The cgroup start made (version 3; n_dirs 0 otherwise): the directories,
     * the kill and OOM files. Strings point into the record's text. */
    struct cgroup_plan cg;
};

/* How start, stop and launch begin, once the plan is read: bpm.log opened,
 * the job's lock taken (held until the helper exits), and the state read
 * as state_read does. stopping: neither bpm.log nor the lock file can fail it. */
int state_enter(const struct job_plan *job, struct state *out, int stopping);
/* 1 and *out filled if the file at path holds a record we read, else 0. */
int state_read_file(const char *path, struct state *out);
/* The same for the job's state file. */
int state_read(const struct job_plan *job, struct state *out);
/* The liveness rule (src/runtime/state.ts's isLive is the same): the pid is
 * alive, not a zombie, with the recorded start time, in the recorded boot. */
int state_running(const struct state *state);
/* Writes the record (its header, then the body the CLI composed: record) and
 * (with_pidfile: start, not run) the pidfile, each whole or not at all; -1 with errno. */
int state_write(const struct job_plan *job, const char *record, pid_t pid, unsigned long long start_time, int with_pidfile);
/* Removes pidfile and state (not the exit record). */
void state_clear(const struct job_plan *job);
#endif
