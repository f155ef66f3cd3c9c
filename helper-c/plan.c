#define _GNU_SOURCE
/* Plan records are NUL-terminated fields: a tag, then a fixed number of
 * arguments. No JSON, no escaping: a field can hold any byte but NUL. */
#include "plan.h"
#include "systemd.h"
#include "util.h"
#include "wire.h"
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

/* The tag's number in the generated table (dist/gen/wire.h, from src/plan/wire.ts). */
static enum plan_tag tag_of(const char *name) {
    for (int t = 0; t < TAG_COUNT; t++)
        if (!strcmp(plan_tags[t].name, name)) return (enum plan_tag)t;
    fail("plan: unknown record \"%s\"", name);
}

static const char *nonempty(const char *tag, const char *s) {
    if (!*s) fail("plan: %s: empty field", tag);
    return s;
}

static int namespace_flag(const char *ns) {
    if (!strcmp(ns, "mount")) return CLONE_NEWNS;
    if (!strcmp(ns, "ipc")) return CLONE_NEWIPC;
    if (!strcmp(ns, "uts")) return CLONE_NEWUTS;
    if (!strcmp(ns, "pid")) return CLONE_NEWPID;
    fail("plan: unknown namespace \"%s\"", ns);
}

/* One record: its fields f (as many as the table says) into the plan. */
static void apply(struct plan *p, enum plan_tag t, const char *const *f) {
    struct job_plan *j = &p->job;
    struct cgroup_plan *cg = &p->cg;
    const char *tag = plan_tags[t].name;
    switch (t) {
    case TAG_END: case TAG_COUNT: break;
    case TAG_MODE: p->detach = !strcmp(f[0], "detach"); break;
    case TAG_LOCK: j->lock = f[0]; break;
    case TAG_STATE: j->state = f[0]; j->pidfile = f[1]; break;
    case TAG_BPMLOG: j->bpmlog = f[0]; j->log_base = f[1]; break;
    case TAG_LOGOWNER: j->log_uid = (uid_t)number(tag, f[0]); j->log_gid = (gid_t)number(tag, f[1]); break;
    case TAG_EVENT: j->event = f[0]; j->error_prefix = f[1]; break;
    case TAG_REFUSE: j->refuse = f[0]; break;
    case TAG_RECORD: j->record = f[0]; break;
    case TAG_LOGS: j->stdout_log = f[0]; j->stderr_log = f[1]; break;
    case TAG_SHUTDOWN:
        if (strcmp(f[0], "TERM") && strcmp(f[0], "INT")) fail("plan: bad shutdown signal");
        j->shutdown_signal = f[0];
        break;
    case TAG_SHUTDOWNTIMEOUT: j->shutdown_timeout_ms = number(tag, f[0]); break;
    case TAG_STOPTIMING: j->grace_ms = number(tag, f[0]); j->quit_ms = number(tag, f[1]); j->kill_ms = number(tag, f[2]); break;
    case TAG_CGROUP: *slot(p->cgroups, &p->n_cgroups, MAX_CGROUPS, "cgroups") = nonempty(tag, f[0]); break;
    case TAG_CGDIR: *slot(cg->dirs, &cg->n_dirs, MAX_CGROUPS, "cgroup directories") = nonempty(tag, f[0]); break;
    case TAG_CGLEFTOVER: *slot(cg->leftovers, &cg->n_leftovers, MAX_CGROUPS, "cgroup directories") = nonempty(tag, f[0]); break;
    case TAG_CGENABLE: *slot(cg->enable, &cg->n_enable, MAX_CGROUPS, "cgroup parents") = f[0]; cg->controllers = f[1]; break;
    case TAG_CGLIMIT: {
        if (cg->n_limits >= MAX_LIMITS) fail("plan: too many cgroup limits");
        struct cglimit *l = &cg->limits[cg->n_limits++];
        l->file = f[0]; l->value = f[1]; l->optional = !strcmp(f[2], "optional");
        break;
    }
    case TAG_CGKILL: cg->kill_file = f[0]; break;
    case TAG_CGOOM: cg->oom_file = f[0]; break;
    case TAG_CGSCOPE:
        if (!scope_name_ok(f[0])) fail("plan: cgscope: \"%s\" is not a job's scope", f[0]);
        cg->scope = f[0];
        break;
    case TAG_CGPROP: {
        if (cg->n_props >= MAX_PROPS) fail("plan: too many scope properties");
        struct cgprop *prop = &cg->props[cg->n_props++];
        prop->name = nonempty(tag, f[0]);
        prop->value = f[2];
        if (!strcmp(f[1], "t")) prop->number = number(tag, f[2]);
        else if (strcmp(f[1], "s") && strcmp(f[1], "b")) fail("plan: cgprop: unknown type \"%s\"", f[1]);
        prop->type = f[1][0];
        break;
    }
    case TAG_NS: p->ns_flags |= namespace_flag(f[0]); break;
    case TAG_PREP: {
        if (p->n_preps >= MAX_PREPS) fail("plan: too many directories");
        struct prep *d = &p->preps[p->n_preps++];
        d->path = f[0];
        d->mode = (unsigned)number(tag, f[1]) & 07777;
        d->uid = (uid_t)number(tag, f[2]);
        d->gid = (gid_t)number(tag, f[3]);
        if (strcmp(f[4], "dir") && strcmp(f[4], "volume")) fail("plan: unknown directory kind \"%s\"", f[4]);
        d->file_ok = !strcmp(f[4], "volume");
        break;
    }
    case TAG_HOOK: p->hook = f[0]; break;
    case TAG_HOOKENV: *slot(p->hook_envp, &p->hook_envc, MAX_LIST, "environment variables for the hook") = f[0]; break;
    case TAG_SHARELOCK: p->share_lock = f[0]; break;
    case TAG_ROOTFS: p->rootfs = f[0]; break;
    case TAG_BIND: {
        struct op *op = new_op(p, OP_BIND);
        op->src = f[0]; op->dst = f[1]; op->flags = mount_flags(f[2]);
        break;
    }
    case TAG_FS: {
        struct op *op = new_op(p, OP_FS);
        op->fstype = f[0]; op->src = f[1]; op->dst = f[2]; op->flags = mount_flags(f[3]); op->data = f[4];
        break;
    }
    case TAG_MKNOD: {
        struct op *op = new_op(p, OP_MKNOD);
        op->dst = f[0];
        op->major = (unsigned)number(tag, f[1]);
        op->minor = (unsigned)number(tag, f[2]);
        op->mode = (unsigned)number(tag, f[3]) & 07777;
        break;
    }
    case TAG_SYMLINK: { struct op *op = new_op(p, OP_SYMLINK); op->src = f[0]; op->dst = f[1]; break; }
    case TAG_MASK: new_op(p, OP_MASK)->dst = f[0]; break;
    case TAG_READONLY: new_op(p, OP_READONLY)->dst = f[0]; break;
    case TAG_ROOTRO: new_op(p, OP_ROOT_RO)->flags = mount_flags(f[0]); break;
    case TAG_USER: p->uid = (uid_t)number(tag, f[0]); p->gid = (gid_t)number(tag, f[1]); break;
    case TAG_GROUP:
        if (p->n_groups >= MAX_GROUPS) fail("plan: too many groups");
        p->groups[p->n_groups++] = (gid_t)number(tag, f[0]);
        break;
    case TAG_CAPS: p->caps = number(tag, f[0]); break;
    case TAG_RLIMIT: {
        if (p->n_rlimits >= MAX_RLIMITS) fail("plan: too many rlimits");
        struct rlim *r = &p->rlimits[p->n_rlimits++];
        r->resource = rlimit_resource(f[0]);
        r->soft = rlimit_value(f[1]);
        r->hard = rlimit_value(f[2]);
        break;
    }
    case TAG_NONEWPRIVS: p->no_new_privs = 1; break;
    case TAG_SUBREAPER: p->subreaper = 1; break;
    case TAG_SECCOMP: {
        size_t n = strlen(f[0]);
        if (n % 2 || n / 2 > 65536) fail("plan: bad seccomp program length");
        unsigned char *bytes = arena_alloc(n / 2 + 1);
        for (size_t i = 0; i < n / 2; i++) {
            int hi = hexval(f[0][2 * i]), lo = hexval(f[0][2 * i + 1]);
            if (hi < 0 || lo < 0) fail("plan: bad seccomp program");
            bytes[i] = (unsigned char)(hi << 4 | lo);
        }
        p->seccomp = bytes; p->seccomp_len = n / 2;
        break;
    }
    case TAG_CWD: p->cwd = f[0]; break;
    case TAG_EXE: p->exe = f[0]; break;
    case TAG_ARG: *slot(p->argv, &p->argc, MAX_LIST, "arguments") = f[0]; break;
    case TAG_ENV: *slot(p->envp, &p->envc, MAX_LIST, "environment variables") = f[0]; break;
    case TAG_STATUS: p->status_path = f[0]; break;
    case TAG_PAUSE: p->pause = 1; break;
    case TAG_REAPER: p->reaper = f[0]; break;
    case TAG_TARGET: {
        unsigned long long pid = number(tag, f[0]);
        if (pid < 2 || pid > 4194304) fail("plan: bad target pid %llu", pid);
        p->target = (pid_t)pid;
        break;
    }
    }
}

static void parse(struct plan *p) {
    for (;;) {
        enum plan_tag t = tag_of(field("tag"));
        if (t == TAG_END) break;
        const char *f[8];
        if (plan_tags[t].fields > sizeof f / sizeof f[0]) fail("plan: %s: too many fields", plan_tags[t].name);
        for (int i = 0; i < plan_tags[t].fields; i++) f[i] = field(plan_tags[t].name);
        apply(p, t, f);
    }
    if (p->argc > 0 && !p->exe) fail("plan: arguments but no executable");
    p->argv[p->argc] = NULL;
    p->envp[p->envc] = NULL;
    p->hook_envp[p->hook_envc] = NULL;
}

/* Checks "PLAN_VERSION <len>" and returns len. */
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
