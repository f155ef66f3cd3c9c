#ifndef BPM_STOP_H
#define BPM_STOP_H
int stop_main(const char *how);
#endif
