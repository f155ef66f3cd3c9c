#ifndef BPM_STOP_H
#define BPM_STOP_H
int stop_main(int argc, char **argv);
#endif
