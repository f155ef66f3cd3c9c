#ifndef BPM_LAUNCH_H
#define BPM_LAUNCH_H
/* Runs the `launch` verb with the plan (and the report channel) on fd. */
int launch_main(int fd);
#endif
