#ifndef BPM_DUMP_H
#define BPM_DUMP_H
/* Test verbs: what the helper understood, printed back canonically, for
 * tests that hold it against what TypeScript meant (test/unit/wire.test.ts). */

/* `plan-dump VERB`: reads a plan on stdin as VERB (start, launch, shell,
 * stop) reads it, and prints the kind it read ("kind KIND"), then one line
 * per record it parsed (tag and fields, tab-separated, \\, tab and newline
 * escaped). */
int plan_dump_main(const char *verb);
/* `state-dump FILE`: what state.c reads of a record and whether it is live by state_running, or "none". */
int state_dump_main(const char *path);
#endif
