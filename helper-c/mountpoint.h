#ifndef BPM_MOUNTPOINT_H
#define BPM_MOUNTPOINT_H
/* 1 if fd (O_PATH is enough) is a mount's root, 0 if not, -1 if unknown. */
int is_mount_root(int fd);
#endif
