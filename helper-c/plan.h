/* The launch plan: what TypeScript decided, as the helper executes it. */
#ifndef BPM_PLAN_H
#define BPM_PLAN_H
#include <stdint.h>
#include <sys/types.h>

#define MAX_PLAN_BYTES (8u << 20)
#define MAX_OPS 256
#define MAX_LIST 4096
#define MAX_GROUPS 256
#define MAX_RLIMITS 16
#define MAX_CGROUPS 16
#define MAX_PREPS 256

enum op_kind { OP_BIND, OP_FS, OP_MKNOD, OP_SYMLINK, OP_MASK, OP_READONLY, OP_ROOT_RO };

struct op {
    enum op_kind kind;
    const char *src, *dst, *fstype, *data;
    unsigned long flags;  /* MS_* */
    unsigned major, minor, mode;
    int tree_fd;  /* shared bind: a clone of the host's mount, made before unshare; -1 if none */
};

struct rlim { int resource; unsigned long long soft, hard; };

/* A host directory (or, for a volume, an existing file) the job needs. */
struct prep {
    const char *path;
    unsigned mode;
    uid_t uid; gid_t gid;
    int file_ok;  /* a volume: an existing non-directory is bound as it is */
};

struct plan {
    int detach;
    const char *cgroups[MAX_CGROUPS]; int n_cgroups;
    int ns_flags;
    const char *rootfs;
    struct prep preps[MAX_PREPS]; int n_preps;
    const char *hook;        /* pre_start, run on the host before the container */
    const char *share_lock;  /* the lock file serialising shared volumes across jobs */
    struct op ops[MAX_OPS]; int n_ops;
    uid_t uid; gid_t gid;
    gid_t groups[MAX_GROUPS]; int n_groups;
    uint64_t caps;
    struct rlim rlimits[MAX_RLIMITS]; int n_rlimits;
    int no_new_privs;
    const unsigned char *seccomp; size_t seccomp_len;
    const char *cwd, *exe, *status_path;
    const char *argv[MAX_LIST + 1]; int argc;
    const char *envp[MAX_LIST + 1]; int envc;
    int subreaper;  /* no pid namespace: init reaps as a subreaper instead of pid 1 */
    int pause;      /* startup tracing: the job waits for a byte on GO_FD before exec */
    pid_t target;   /* shell: the running container's init to enter */
};

/* The descriptor the CLI writes one byte to once the tracer is attached. */
#define GO_FD 4

/* Reads "BPMPLAN1 <len>\n" + records from fd and fills plan; dies on any
 * error. End of file before the first byte means the CLI decided to launch
 * nothing (the process was already running): exit 0 quietly. */
void plan_read(int fd, struct plan *plan);
#endif
