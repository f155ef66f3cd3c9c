#ifndef BPM_SHELL_H
#define BPM_SHELL_H
/* Runs the `shell` verb with the plan (and the report channel) on fd. */
int shell_main(int fd);
#endif
