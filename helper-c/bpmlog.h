#ifndef BPM_BPMLOG_H
#define BPM_BPMLOG_H
#include "plan.h"
/* bpm.log, written by the helper for the events after the CLI handed over:
 * JSON lines in the shape the CLI writes (timestamp, level, source, message,
 * data). Opened once, without following a symlink, as the CLI opens it. */

/* Opens a log file of the job (bpm.log, a process's stdout or stderr log)
 * for appending, the one way every file a job can write is opened: its
 * directory (the job's log dir) is made if missing (parents root's, 0755),
 * opened without following a symlink, and made the job's, 0750, on the
 * descriptor; the file is opened from it with openat(), without following a
 * symlink, and must be a regular file with one link (a hard link the job
 * made could be a host file); then the job's, 0600, on the descriptor. Dies
 * with "refusing to open symlink at PATH" (or DIR) on a symlink, and with
 * "refusing to open PATH: ..." if it is not a plain file of its own. */
int open_job_log(const struct job_plan *job, const char *path);
/* Opens the job's bpm.log (open_job_log). No bpm.log: no-op. Where it is
 * only wanted (stop: a job must not be able to make its stop fail), a
 * bpm.log that cannot be used is said on stderr and left alone. */
enum bpmlog_need { BPMLOG_REQUIRED, BPMLOG_WANTED };
void bpmlog_open(const struct job_plan *job, enum bpmlog_need need);
/* One event: level "info" or "error", the plan's prefix + "." + name, and
 * the fixed data plus `extra` (JSON members, or NULL). Failing to write is
 * not a failure of the command. */
void bpmlog(const char *level, const char *name, const char *extra);
/* How a command the CLI handed over ends when it fails: "failed" (with the
 * error) and "complete" in bpm.log, "Error: PREFIX MSG" on stderr, exit 1. */
__attribute__((noreturn)) void bpmlog_command_failed(const char *prefix, const char *msg);
/* Closes bpm.log in a forked process that will not exec (the container's init). */
void bpmlog_forget(void);
/* `"key":N` and `"key":"escaped text"`, for extra. */
void json_number(char *out, size_t cap, const char *key, long long value);
void json_text(char *out, size_t cap, const char *key, const char *value);
#endif
