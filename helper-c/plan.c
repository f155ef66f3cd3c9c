#define _GNU_SOURCE
/* Plan records are NUL-terminated fields: a tag, then a fixed number of
 * arguments. No JSON, no escaping: a field can hold any byte but NUL. */
#include "plan.h"
#include "util.h"
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdint.h>
#include <fcntl.h>
#include <unistd.h>

static const char *cur, *end;

/* The plan's memory: mapped on its own, so that the container's init can
 * give it back once the job runs (plan_release). */
static struct { void *at; size_t len; } arena[4];

static void *arena_alloc(size_t len) {
    for (size_t i = 0; i < sizeof arena / sizeof arena[0]; i++) {
        if (arena[i].at) continue;
        void *at = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (at == MAP_FAILED) die("map %zu bytes for the plan", len);
        arena[i].at = at;
        arena[i].len = len;
        return at;
    }
    fail("plan: too many allocations");
}

void plan_release(const struct plan *p) {
    for (size_t i = 0; i < sizeof arena / sizeof arena[0]; i++) {
        if (arena[i].at) munmap(arena[i].at, arena[i].len);
        arena[i].at = NULL;
    }
    /* The struct itself is static storage: its pages go back and read as
     * zeros if ever touched again (nothing does). */
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = ((uintptr_t)p + page - 1) & ~(page - 1), to = ((uintptr_t)(p + 1)) & ~(page - 1);
    if (to > from) madvise((void *)from, to - from, MADV_DONTNEED);
}

static const char *field(const char *tag) {
    if (cur >= end) fail("plan: record %s is cut short", tag);
    const char *nul = memchr(cur, '\0', (size_t)(end - cur));
    if (!nul) fail("plan: record %s is not terminated", tag);
    const char *f = cur;
    cur = nul + 1;
    return f;
}

static unsigned long long number(const char *tag, const char *s) {
    unsigned long long v;
    if (parse_u64(s, &v)) fail("plan: %s: bad number \"%s\"", tag, s);
    return v;
}

static unsigned long mount_flags(const char *s) {
    static const struct { const char *name; unsigned long flag; } names[] = {
        {"ro", MS_RDONLY}, {"nosuid", MS_NOSUID}, {"nodev", MS_NODEV},
        {"noexec", MS_NOEXEC}, {"rec", MS_REC}, {"shared", MS_SHARED},
    };
    unsigned long flags = 0;
    char buf[128];
    if (strlen(s) >= sizeof buf) fail("plan: mount flags too long");
    strcpy(buf, s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t i;
        for (i = 0; i < sizeof names / sizeof names[0]; i++)
            if (!strcmp(t, names[i].name)) break;
        if (i == sizeof names / sizeof names[0]) fail("plan: unknown mount flag \"%s\"", t);
        flags |= names[i].flag;
    }
    return flags;
}

static int rlimit_resource(const char *name) {
    if (!strcmp(name, "nofile")) return RLIMIT_NOFILE;
    if (!strcmp(name, "core")) return RLIMIT_CORE;
    if (!strcmp(name, "nproc")) return RLIMIT_NPROC;
    fail("plan: unknown rlimit \"%s\"", name);
}

static unsigned long long rlimit_value(const char *s) {
    return strcmp(s, "unlimited") ? number("rlimit", s) : RLIM_INFINITY;
}

static struct op *new_op(struct plan *p, enum op_kind kind) {
    if (p->n_ops >= MAX_OPS) fail("plan: too many mount operations");
    struct op *op = &p->ops[p->n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->tree_fd = -1;
    return op;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static const char **slot(const char **list, int *n, int max, const char *what) {
    if (*n >= max) fail("plan: too many %s", what);
    return &list[(*n)++];
}

/* Records about the job's lock, state, logs and cgroup: true if tag was one. */
static int parse_job(struct plan *p, const char *tag) {
    struct job_plan *j = &p->job;
    struct cgroup_plan *cg = &p->cg;
    if (!strcmp(tag, "lock")) j->lock = field(tag);
    else if (!strcmp(tag, "state")) { j->state = field(tag); j->pidfile = field(tag); }
    else if (!strcmp(tag, "bpmlog")) { j->bpmlog = field(tag); j->log_base = field(tag); }
    else if (!strcmp(tag, "event")) { j->event = field(tag); j->error_prefix = field(tag); }
    else if (!strcmp(tag, "refuse")) j->refuse = field(tag);
    else if (!strcmp(tag, "record")) j->record = field(tag);
    else if (!strcmp(tag, "logs")) {
        j->stdout_log = field(tag); j->stderr_log = field(tag);
    } else if (!strcmp(tag, "logowner")) {
        j->log_uid = (uid_t)number(tag, field(tag)); j->log_gid = (gid_t)number(tag, field(tag));
    } else if (!strcmp(tag, "shutdown")) {
        j->shutdown_signal = field(tag);
        if (strcmp(j->shutdown_signal, "TERM") && strcmp(j->shutdown_signal, "INT")) fail("plan: bad shutdown signal");
    } else if (!strcmp(tag, "shutdowntimeout")) {
        j->shutdown_timeout_ms = number(tag, field(tag));
    } else if (!strcmp(tag, "stoptiming")) {
        j->grace_ms = number(tag, field(tag)); j->quit_ms = number(tag, field(tag)); j->kill_ms = number(tag, field(tag));
    } else if (!strcmp(tag, "cgdir")) *slot(cg->dirs, &cg->n_dirs, MAX_CGROUPS, "cgroup directories") = field(tag);
    else if (!strcmp(tag, "cgleftover")) *slot(cg->leftovers, &cg->n_leftovers, MAX_CGROUPS, "cgroup directories") = field(tag);
    else if (!strcmp(tag, "cgenable")) {
        *slot(cg->enable, &cg->n_enable, MAX_CGROUPS, "cgroup parents") = field(tag);
        cg->controllers = field(tag);
    } else if (!strcmp(tag, "cglimit")) {
        if (cg->n_limits >= MAX_LIMITS) fail("plan: too many cgroup limits");
        struct cglimit *l = &cg->limits[cg->n_limits++];
        l->file = field(tag); l->value = field(tag); l->optional = !strcmp(field(tag), "optional");
    } else if (!strcmp(tag, "cgkill")) cg->kill_file = field(tag);
    else if (!strcmp(tag, "cgoom")) cg->oom_file = field(tag);
    else return 0;
    return 1;
}

static void parse(struct plan *p) {
    for (;;) {
        const char *tag = field("tag");
        if (!strcmp(tag, "end")) break;
        if (parse_job(p, tag)) continue;
        if (!strcmp(tag, "mode")) {
            p->detach = !strcmp(field(tag), "detach");
        } else if (!strcmp(tag, "cgroup")) {
            if (p->n_cgroups >= MAX_CGROUPS) fail("plan: too many cgroups");
            p->cgroups[p->n_cgroups++] = field(tag);
        } else if (!strcmp(tag, "ns")) {
            const char *ns = field(tag);
            if (!strcmp(ns, "mount")) p->ns_flags |= CLONE_NEWNS;
            else if (!strcmp(ns, "ipc")) p->ns_flags |= CLONE_NEWIPC;
            else if (!strcmp(ns, "uts")) p->ns_flags |= CLONE_NEWUTS;
            else if (!strcmp(ns, "pid")) p->ns_flags |= CLONE_NEWPID;
            else fail("plan: unknown namespace \"%s\"", ns);
        } else if (!strcmp(tag, "rootfs")) {
            p->rootfs = field(tag);
        } else if (!strcmp(tag, "prep")) {
            if (p->n_preps >= MAX_PREPS) fail("plan: too many directories");
            struct prep *d = &p->preps[p->n_preps++];
            d->path = field(tag);
            d->mode = (unsigned)number(tag, field(tag)) & 07777;
            d->uid = (uid_t)number(tag, field(tag));
            d->gid = (gid_t)number(tag, field(tag));
            const char *kind = field(tag);
            if (strcmp(kind, "dir") && strcmp(kind, "volume")) fail("plan: unknown directory kind \"%s\"", kind);
            d->file_ok = !strcmp(kind, "volume");
        } else if (!strcmp(tag, "hook")) {
            p->hook = field(tag);
        } else if (!strcmp(tag, "sharelock")) {
            p->share_lock = field(tag);
        } else if (!strcmp(tag, "bind")) {
            struct op *op = new_op(p, OP_BIND);
            op->src = field(tag); op->dst = field(tag); op->flags = mount_flags(field(tag));
        } else if (!strcmp(tag, "fs")) {
            struct op *op = new_op(p, OP_FS);
            op->fstype = field(tag); op->src = field(tag); op->dst = field(tag);
            op->flags = mount_flags(field(tag)); op->data = field(tag);
        } else if (!strcmp(tag, "mknod")) {
            struct op *op = new_op(p, OP_MKNOD);
            op->dst = field(tag);
            op->major = (unsigned)number(tag, field(tag));
            op->minor = (unsigned)number(tag, field(tag));
            op->mode = (unsigned)number(tag, field(tag)) & 07777;
        } else if (!strcmp(tag, "symlink")) {
            struct op *op = new_op(p, OP_SYMLINK);
            op->src = field(tag); op->dst = field(tag);
        } else if (!strcmp(tag, "mask")) {
            new_op(p, OP_MASK)->dst = field(tag);
        } else if (!strcmp(tag, "readonly")) {
            new_op(p, OP_READONLY)->dst = field(tag);
        } else if (!strcmp(tag, "rootro")) {
            new_op(p, OP_ROOT_RO)->flags = mount_flags(field(tag));
        } else if (!strcmp(tag, "user")) {
            p->uid = (uid_t)number(tag, field(tag));
            p->gid = (gid_t)number(tag, field(tag));
        } else if (!strcmp(tag, "group")) {
            if (p->n_groups >= MAX_GROUPS) fail("plan: too many groups");
            p->groups[p->n_groups++] = (gid_t)number(tag, field(tag));
        } else if (!strcmp(tag, "caps")) {
            p->caps = number(tag, field(tag));
        } else if (!strcmp(tag, "rlimit")) {
            if (p->n_rlimits >= MAX_RLIMITS) fail("plan: too many rlimits");
            struct rlim *r = &p->rlimits[p->n_rlimits++];
            r->resource = rlimit_resource(field(tag));
            r->soft = rlimit_value(field(tag));
            r->hard = rlimit_value(field(tag));
        } else if (!strcmp(tag, "nonewprivs")) {
            p->no_new_privs = 1;
        } else if (!strcmp(tag, "subreaper")) {
            p->subreaper = 1;
        } else if (!strcmp(tag, "seccomp")) {
            const char *hex = field(tag);
            size_t n = strlen(hex);
            if (n % 2 || n / 2 > 65536) fail("plan: bad seccomp program length");
            unsigned char *bytes = arena_alloc(n / 2 + 1);
            for (size_t i = 0; i < n / 2; i++) {
                int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
                if (hi < 0 || lo < 0) fail("plan: bad seccomp program");
                bytes[i] = (unsigned char)(hi << 4 | lo);
            }
            p->seccomp = bytes; p->seccomp_len = n / 2;
        } else if (!strcmp(tag, "reaper")) {
            p->reaper = field(tag);
        } else if (!strcmp(tag, "pause")) {
            p->pause = 1;
        } else if (!strcmp(tag, "target")) {
            unsigned long long pid = number(tag, field(tag));
            if (pid < 2 || pid > 4194304) fail("plan: bad target pid %llu", pid);
            p->target = (pid_t)pid;
        } else if (!strcmp(tag, "cwd")) {
            p->cwd = field(tag);
        } else if (!strcmp(tag, "exe")) {
            p->exe = field(tag);
        } else if (!strcmp(tag, "arg")) {
            if (p->argc >= MAX_LIST) fail("plan: too many arguments");
            p->argv[p->argc++] = field(tag);
        } else if (!strcmp(tag, "env")) {
            if (p->envc >= MAX_LIST) fail("plan: too many environment variables");
            p->envp[p->envc++] = field(tag);
        } else if (!strcmp(tag, "hookenv")) {
            if (p->hook_envc >= MAX_LIST) fail("plan: too many environment variables for the hook");
            p->hook_envp[p->hook_envc++] = field(tag);
        } else if (!strcmp(tag, "status")) {
            p->status_path = field(tag);
        } else {
            fail("plan: unknown record \"%s\"", tag);
        }
    }
    if (p->argc > 0 && !p->exe) fail("plan: arguments but no executable");
    p->argv[p->argc] = NULL;
    p->envp[p->envc] = NULL;
    p->hook_envp[p->hook_envc] = NULL;
}

/* Checks "BPMPLAN1 <len>" and returns len. */
static size_t header_length(const char *header) {
    size_t vlen = strlen(PLAN_VERSION);
    if (strncmp(header, PLAN_VERSION " ", vlen + 1)) fail("plan: expected version %s, got \"%.40s\"", PLAN_VERSION, header);
    unsigned long long len;
    if (parse_u64(header + vlen + 1, &len) || len == 0 || len > MAX_PLAN_BYTES) fail("plan: bad length");
    return (size_t)len;
}

static void parse_body(char *buf, size_t len, struct plan *p) {
    /* The plan lives in static storage, zero from the start: no memset,
     * which would make the whole of it resident in the container's init. */
    cur = buf;
    end = buf + len;
    parse(p);
}

void plan_read(int fd, struct plan *p) {
    char header[32];
    size_t n = 0;
    /* Header: "BPMPLAN1 <decimal length>\n", read a byte at a time. */
    for (;;) {
        if (n >= sizeof header - 1) fail("plan: header too long");
        ssize_t got = read(fd, &header[n], 1);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) die("plan: reading header");
        if (got == 0 && n == 0) _exit(0); /* the CLI closed the channel: nothing to launch */
        if (got == 0) fail("plan: header cut short");
        if (header[n] == '\n') break;
        n++;
    }
    header[n] = '\0';
    size_t len = header_length(header);
    char *buf = arena_alloc(len);
    if (read_exact(fd, buf, len)) die("plan: reading %zu bytes", len);
    parse_body(buf, len, p);
}

static int base64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Standard base64 with padding, as Node's Buffer writes it; returns the length, or fails. */
static size_t base64_decode(const char *in, size_t len, char *out) {
    if (len % 4) fail("plan: bad encoding");
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + k];
            if (c == '=' && i + 4 == len && k >= 2) { v[k] = 0; pad++; continue; }
            if (pad || (v[k] = base64_value(c)) < 0) fail("plan: bad encoding");
        }
        unsigned long w = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 | (unsigned long)v[2] << 6 | (unsigned long)v[3];
        out[n++] = (char)(w >> 16);
        if (pad < 2) out[n++] = (char)(w >> 8);
        if (pad < 1) out[n++] = (char)w;
    }
    return n;
}

void plan_receive(const char *how, struct plan *p) {
    if (!strcmp(how, "env")) return plan_read_env("BPM_PLAN", p);
    if (strcmp(how, "fd")) fail("plan: unknown source \"%s\"", how);
    plan_read(3, p);
    close(3);
}

void plan_read_env(const char *name, struct plan *p) {
    char *text = getenv(name);
    if (!text) fail("plan: no %s in the environment", name);
    size_t len = strlen(text);
    if (len < 16 || len > MAX_ENV_PLAN) fail("plan: bad size");
    char *buf = arena_alloc(len / 4 * 3 + 1);
    size_t n = base64_decode(text, len, buf);
    /* Nothing of the plan stays where /proc/PID/environ shows it, nor goes to
     * a child (the container's init, the hook) with this environment. */
    memset(text, 0, len);
    clearenv();
    char *nl = memchr(buf, '\n', n < 32 ? n : 32);
    if (!nl) fail("plan: no header");
    *nl = '\0';
    size_t body = header_length(buf);
    if ((size_t)(nl + 1 - buf) + body != n) fail("plan: length does not match");
    parse_body(nl + 1, body, p);
}
