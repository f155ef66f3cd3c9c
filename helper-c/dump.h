#ifndef BPM_DUMP_H
#define BPM_DUMP_H
/* Test verbs: what the helper understood, printed back canonically, for
 * tests that hold it against what TypeScript meant (test/unit/wire.test.ts). */

/* `plan-dump`: reads a plan on stdin, prints one line per record it parsed
 * (tag and fields, tab-separated, \\, tab and newline escaped). */
int plan_dump_main(void);
/* `state-dump FILE`: what state.c reads of a record and whether it is live by state_running, or "none". */
int state_dump_main(const char *path);
#endif
