#ifndef BPM_TEE_H
#define BPM_TEE_H
#include <sys/types.h>
/* bpm run's output (the launch verb): the job's stdout and stderr come to
 * the helper on pipes, and each chunk goes to the process's log, then to
 * the helper's own stdout or stderr (bpm's terminal), in order. A terminal
 * that goes away (bpm run JOB | head) ends only the copy to it, and a log
 * that fails (a full disk) only the copy to that log. */

struct tee {
    int from[2];  /* the pipes' read ends (stdout, stderr); -1 at end of file */
    int log[2];   /* the process's logs; -1 once a write failed */
    int to[2];    /* 1 and 2; -1 once a write failed */
};

/* Takes the logs (out_log, err_log) and makes the pipes; their write ends,
 * for the job (and the pre_start hook), come back in out and err. */
void tee_open(struct tee *t, int out_log, int err_log, int *out, int *err);
/* Copies while pid (a child) runs, passing each signal read from sigfd
 * (-1: none) on to it; returns its wait status once it is reaped. */
int tee_wait(struct tee *t, pid_t pid, int sigfd);
/* Once the job's processes are gone: copies what they left in the pipes, without waiting for an end of file. */
void tee_drain(struct tee *t);
/* In a child that copies nothing (the container's init): the tee's descriptors closed. */
void tee_forget(const struct tee *t);
#endif
