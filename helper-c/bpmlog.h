#ifndef BPM_BPMLOG_H
#define BPM_BPMLOG_H
#include "plan.h"
/* bpm.log and the process's logs: the helper alone opens the files a job can
 * write. bpm.log holds JSON lines in the shape src/plan/wire.ts's eventLine
 * gives them (timestamp, level, source, message, data): the CLI's, which it
 * formats and sends in a plan, and the helper's own. */

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
/* Opens the job's bpm.log (open_job_log) and writes the CLI's lines from
 * the plan first. No bpm.log: no-op. Where it is only wanted (stop: a job
 * must not be able to make its stop fail), a bpm.log that cannot be used is
 * said on stderr and left alone: -1; otherwise 0. */
enum bpmlog_need { BPMLOG_REQUIRED, BPMLOG_WANTED };
int bpmlog_open(const struct job_plan *job, enum bpmlog_need need);
/* The `log` verb (run, shell, trace, and a command that failed before its
 * hand-over): the plan on fd, bpm.log opened as bpmlog_open does, the
 * CLI's lines written. Exits 0 once written, 1 when a wanted bpm.log could
 * not be used (said on stderr); a required one dies: "error: WHY". */
int bpmlog_main(int fd);
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
