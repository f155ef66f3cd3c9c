#ifndef BPM_LAUNCH_H
#define BPM_LAUNCH_H
/* Runs the `launch` verb with the plan (and the report channel) on fd;
 * with lock, first takes the job's lock on LOCK_FD. */
int launch_main(int fd, int lock);
#endif
