#ifndef BPM_INIT_H
#define BPM_INIT_H
#include "plan.h"
#include <signal.h>
/* The container's first process: sets up the filesystem, starts the job,
 * then reaps zombies and forwards signals until the job exits. Never returns. */
__attribute__((noreturn)) void init_main(const struct launch_plan *plan, int status_fd);
/* Signals bpm forwards to the job (and, in the foreground, to the init). */
extern const int forwarded_signals[];
void block_signals(sigset_t *set, sigset_t *old);
/* Exit status of a child as a shell reports it: code, or 128+signal. */
int shell_status(int wstatus);
#endif
