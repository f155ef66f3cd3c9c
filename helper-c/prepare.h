#ifndef BPM_PREPARE_H
#define BPM_PREPARE_H
#include "plan.h"
/* On the host, with the job's lock held, before the container exists. */

/* Creates the directories the job needs (its data, tmp, run and store dirs,
 * volume sources) through walk_path, then sets owner and mode on the
 * descriptor it resolved. */
void prepare_dirs(const struct prepare_plan *prepare);
/* Runs the pre_start hook as root with the job's environment and output;
 * dies with "prestart hook failed: ..." unless it exits 0. */
struct job_io;
void prepare_run_hook(const struct prepare_plan *prepare, const struct job_io *io);
#endif
