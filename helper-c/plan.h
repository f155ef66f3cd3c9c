/* The plans TypeScript decided, one per verb, as the helper executes them:
 * a launch (start, launch; or its refusal), an enter (shell), a stop. Each
 * is built from the parts below, and each part goes to the code of its
 * concern alone (identity.c takes the identity, mounts.c the filesystem...). */
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
#define MAX_PROPS 32

/* The job's bookkeeping around the container (start, launch, stop; a refusal too): its lock, state, bpm.log. */
struct job_plan {
    const char *lock;                  /* lock file, flock()ed for the whole command */
    const char *state, *pidfile;       /* written when it runs, removed when it stops */
    const char *bpmlog;                /* bpm.log: JSON events */
    const char *log_base;              /* the events' fixed data, as JSON members: "job":"web","process":"web" */
    const char *loglines;              /* the CLI's events, whole lines, written first (NULL: none) */
    const char *event;                 /* event name prefix: bpm.start, bpm.run... */
    const char *error_prefix;          /* before a failure's message: "failed to start job-process: " */
    uid_t log_uid; gid_t log_gid;      /* owner of bpm.log and the process's logs */
};

/* A value to write to a cgroup file (memory.max, pids.max...). */
struct cglimit { const char *file, *value; int optional; /* skipped where the kernel lacks the file */ };

/* A property of the job's systemd scope: its D-Bus type ('s', 'b', 't') and value. */
struct cgprop { const char *name, *value; char type; unsigned long long number; };

/* The job's cgroup as TypeScript laid it out: what to make, fill, kill, read.
 * A stop's holds only what removing it takes (dirs, leftovers, kill file,
 * scope); a record's (state.c), those and the OOM file. */
struct cgroup_plan {
    const char *dirs[MAX_CGROUPS]; int n_dirs;       /* the job's own directories (v1: one per hierarchy) */
    const char *leftovers[MAX_CGROUPS]; int n_leftovers;  /* v1: its directories an earlier start may have made (cpu): removed, never made */
    const char *enable[MAX_CGROUPS]; int n_enable;   /* v2: the parents, top down, whose subtree_control must hold `controllers` */
    const char *controllers;                         /* v2: e.g. "memory pids" */
    struct cglimit limits[MAX_LIMITS]; int n_limits;
    const char *kill_file;                           /* v2: cgroup.kill, tried before killing pid by pid */
    const char *oom_file;                            /* memory.events (v2) or memory.oom_control (v1) */
    const char *parent_oom_file;                     /* in a scope: the same file of its parent, which outlives the scope's cgroup */
    const char *scope;                               /* systemd's transient scope for the job, or NULL: we make the directories */
    struct cgprop props[MAX_PROPS]; int n_props;     /* its properties (the limits among them) */
    const char *procs[MAX_CGROUPS]; int n_procs;     /* cgroup.procs of each directory: the init joins them (not in a scope) */
};

struct rlim { int resource; unsigned long long soft, hard; };

/* Who the job's program runs as (identity.c). */
struct identity_plan {
    uid_t uid; gid_t gid;
    gid_t groups[MAX_GROUPS]; int n_groups;
    uint64_t caps;
    struct rlim rlimits[MAX_RLIMITS]; int n_rlimits;
    int no_new_privs;
    const unsigned char *seccomp; size_t seccomp_len;  /* loaded last, right before exec */
};

/* What it runs, where, with what environment. */
struct program_plan {
    const char *cwd, *exe;
    const char *argv[MAX_LIST + 1]; int argc;
    const char *envp[MAX_LIST + 1]; int envc;
};

/* A host directory (or, for a volume, an existing file) the job needs. */
struct prep {
    const char *path;
    unsigned mode;
    uid_t uid; gid_t gid;
    int file_ok;  /* a volume: an existing non-directory is bound as it is */
};

/* What is done on the host before the container (prepare.c): directories, then the pre_start hook. */
struct prepare_plan {
    struct prep dirs[MAX_PREPS]; int n_dirs;
    const char *hook;  /* pre_start, run on the host as root */
    const char *hook_envp[MAX_LIST + 1]; int hook_envc;  /* its environment: the job's, less what would steer root */
};

enum op_kind { OP_BIND, OP_FS, OP_MKNOD, OP_SYMLINK, OP_MASK, OP_READONLY, OP_ROOT_RO };

struct op {
    enum op_kind kind;
    const char *src, *dst, *fstype, *data;
    unsigned long flags;  /* MS_* */
    unsigned major, minor, mode;
    int tree_fd;  /* shared bind: a clone of the host's mount, made before unshare; -1 if none */
};

/* The container's filesystem (mounts.c): its root, the mount operations in order. */
struct mount_plan {
    const char *rootfs;
    const char *share_lock;  /* the lock file serialising shared volumes across jobs */
    struct op ops[MAX_OPS]; int n_ops;
};

/* start and launch: a container for the job, with its bookkeeping and cgroup. */
struct launch_plan {
    /* The refusal form: the CLI could not prepare this launch; unless the
     * process runs, fail with this. Such a plan has the job's bookkeeping and nothing else. */
    const char *refuse;
    struct job_plan job;
    int detach;                        /* start: a session of its own; launch (bpm run) stays in the foreground */
    const char *record;                /* the record's body (src/plan/record.ts), written after the header state.c adds */
    const char *stdout_log, *stderr_log;  /* start: the process's logs, opened by the helper */
    struct cgroup_plan cg;
    int ns_flags;
    struct prepare_plan prepare;
    struct mount_plan fs;
    struct identity_plan id;
    struct program_plan prog;
    int subreaper;  /* no pid namespace: init reaps as a subreaper instead of pid 1 */
    const char *status_path;  /* the exit record, written by the init */
    int pause;      /* startup tracing: the job waits for a byte on GO_FD before exec */
    const char *reaper;  /* what the init becomes once the job runs (helper-c/reaper/) */
    int reaper_fd;       /* it, opened on the host before the container exists; -1 if none */
};

/* shell: the running container to enter, and who and what to run in it. */
struct enter_plan {
    pid_t target;   /* the container's init */
    const char *cgroup_procs[MAX_CGROUPS]; int n_cgroup_procs;
    int ns_flags;
    struct identity_plan id;
    struct program_plan prog;
};

/* stop: the job's bookkeeping, the cgroup a start would make (for a record
 * that names none), and the schedule. */
struct stop_plan {
    struct job_plan job;
    struct cgroup_plan cg;
    unsigned long long grace_ms, quit_ms, kill_ms;  /* the record's shutdown timeout wins over grace_ms */
};

/* log: bpm.log and the CLI's lines for it, from a command that hands
 * nothing over (run, shell, trace) or failed before it did. */
struct log_plan {
    struct job_plan job;   /* bpm.log, its owner, the lines; no lock, state or events of its own */
    int wanted;            /* stop: a bpm.log that cannot be used is said on stderr, not a failure */
};

/* The descriptor the CLI writes one byte to once the tracer is attached. */
#define GO_FD 4

/* Each verb reads the kinds of plan it takes, "BPMPLAN3 <kind> <len>\n" and
 * records, from a descriptor or (PLAN_FROM_ENV) from BPM_PLAN, base64, which
 * is wiped once read (the CLI became the helper with execve, so no descriptor
 * of its own survives). A plan of another kind, or a record its kind does
 * not carry, is refused by name; any error is fatal. End of file on the
 * descriptor before the first byte means the CLI decided to launch nothing:
 * exit 0 quietly. */
#define PLAN_FROM_ENV (-1)
#define MAX_ENV_PLAN (128u << 10)
/* start and launch: a launch, or its refusal (then p->refuse is set). */
void launch_plan_read(int from, struct launch_plan *p);
/* shell. */
void enter_plan_read(int from, struct enter_plan *p);
/* stop. */
void stop_plan_read(int from, struct stop_plan *p);
/* log. */
void log_plan_read(int from, struct log_plan *p);
/* Where start and stop take their plan from, as the CLI says: "env"
 * (PLAN_FROM_ENV, the usual hand-over) or "fd" (descriptor 3, which the verb
 * closes once read: a plan too large for the environment, or a CLI that
 * waits for the helper). */
int plan_source(const char *how);
/* Gives the plan's memory back (the container's init, once the job runs):
 * nothing of the plan may be used after. */
void plan_release(const struct launch_plan *plan);
#endif
