/* The launch plan: what TypeScript decided, as the helper executes it. */
#ifndef BPM_PLAN_H
#define BPM_PLAN_H
#include <stdint.h>
#include <sys/types.h>

#define MAX_OPS 256
#define MAX_LIST 4096
#define MAX_GROUPS 256
#define MAX_RLIMITS 16
#define MAX_CGROUPS 16
#define MAX_PREPS 256
#define MAX_LIMITS 16

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

/* A value to write to a cgroup file (memory.max, pids.max...). */
struct cglimit { const char *file, *value; int optional; /* skipped where the kernel lacks the file */ };

/* A property of the job's systemd scope: its D-Bus type ('s', 'b', 't') and value. */
struct cgprop { const char *name, *value; char type; unsigned long long number; };
#define MAX_PROPS 32

/* The job's cgroup as TypeScript laid it out: what to make, fill, kill, read. */
struct cgroup_plan {
    const char *dirs[MAX_CGROUPS]; int n_dirs;       /* the job's own directories (v1: one per hierarchy) */
    const char *leftovers[MAX_CGROUPS]; int n_leftovers;  /* v1: its directories an earlier start may have made (cpu): removed, never made */
    const char *enable[MAX_CGROUPS]; int n_enable;   /* v2: the parents, top down, whose subtree_control must hold `controllers` */
    const char *controllers;                         /* v2: e.g. "memory pids" */
    struct cglimit limits[MAX_LIMITS]; int n_limits;
    const char *kill_file;                           /* v2: cgroup.kill, tried before killing pid by pid */
    const char *oom_file;                            /* memory.events (v2) or memory.oom_control (v1) */
    const char *scope;                               /* systemd's transient scope for the job, or NULL: we make the directories */
    struct cgprop props[MAX_PROPS]; int n_props;     /* its properties (the limits among them) */
};

/* The job's bookkeeping around the container: its lock, state, logs. */
struct job_plan {
    const char *lock;                  /* lock file, flock()ed for the whole command */
    const char *state, *pidfile;       /* written when it runs, removed when it stops */
    const char *bpmlog;                /* bpm.log: JSON events */
    const char *log_base;              /* the events' fixed data, as JSON members: "job":"web","process":"web" */
    const char *event;                 /* event name prefix: bpm.start, bpm.run... */
    const char *error_prefix;          /* before a failure's message: "failed to start job-process: " */
    const char *refuse;                /* the CLI could not prepare this start: unless it runs, fail with this */
    const char *stdout_log, *stderr_log;  /* the process's logs, opened by the helper (start) */
    uid_t log_uid; gid_t log_gid;      /* owner of bpm.log and the logs */
    const char *shutdown_signal;       /* TERM or INT, recorded in the state for stop */
    unsigned long long shutdown_timeout_ms;  /* the wait before QUIT (shutdown_timeout), recorded likewise */
    unsigned long long grace_ms, quit_ms, kill_ms;  /* stop's schedule; the state's shutdown timeout wins over grace_ms */
    const char *record;                /* start: the record's body (src/plan/record.ts), written after the header state.c adds */
};

struct plan {
    int detach;
    struct job_plan job;
    struct cgroup_plan cg;
    const char *cgroups[MAX_CGROUPS]; int n_cgroups;
    int ns_flags;
    const char *rootfs;
    struct prep preps[MAX_PREPS]; int n_preps;
    const char *hook;        /* pre_start, run on the host before the container */
    const char *hook_envp[MAX_LIST + 1]; int hook_envc;  /* its environment: the job's, less what would steer root */
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
    const char *reaper;  /* what the init becomes once the job runs (helper-c/reaper/) */
    int reaper_fd;       /* it, opened on the host before the container exists; -1 if none */
    pid_t target;   /* shell: the running container's init to enter */
};

/* The descriptor the CLI writes one byte to once the tracer is attached. */
#define GO_FD 4

/* Reads "BPMPLAN1 <len>\n" + records from fd and fills plan; dies on any
 * error. End of file before the first byte means the CLI decided to launch
 * nothing: exit 0 quietly. */
void plan_read(int fd, struct plan *plan);
/* The same from the environment variable name of an exec'd helper (start
 * and stop: the CLI became the helper with execve, so no descriptor of its
 * own survives), base64-encoded; it is wiped once read. */
#define MAX_ENV_PLAN (128u << 10)
void plan_read_env(const char *name, struct plan *plan);
/* How start and stop receive their plan: "env" (BPM_PLAN, the usual
 * hand-over) or "fd" (on descriptor 3, closed once read: a plan too large
 * for the environment, or a CLI that waits for the helper). */
void plan_receive(const char *how, struct plan *plan);
/* Gives the plan's memory back (the container's init, once the job runs):
 * nothing of the plan may be used after. */
void plan_release(const struct plan *plan);
#endif
