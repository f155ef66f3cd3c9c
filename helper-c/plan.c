#define _GNU_SOURCE
/* The plan's reader. A plan is a header naming its kind, then records of
 * NUL-terminated fields: a tag, then as many fields as the generated table
 * (dist/gen/wire.h, from src/plan/wire.ts) gives it. No JSON, no escaping: a
 * field can hold any byte but NUL. Each verb takes its kinds of plan, and
 * each record its kind carries goes to the part of the plan it fills. */
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

void plan_release(const struct launch_plan *p) {
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

/* ---- field values ---- */

static unsigned long long number(const char *tag, const char *s) {
    unsigned long long v;
    if (parse_u64(s, &v)) fail("plan: %s: bad number \"%s\"", tag, s);
    return v;
}

static const char *nonempty(const char *tag, const char *s) {
    if (!*s) fail("plan: %s: empty field", tag);
    return s;
}

static const char **slot(const char **list, int *n, int max, const char *what) {
    if (*n >= max) fail("plan: too many %s", what);
    return &list[(*n)++];
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

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static int namespace_flag(const char *ns) {
    if (!strcmp(ns, "mount")) return CLONE_NEWNS;
    if (!strcmp(ns, "ipc")) return CLONE_NEWIPC;
    if (!strcmp(ns, "uts")) return CLONE_NEWUTS;
    if (!strcmp(ns, "pid")) return CLONE_NEWPID;
    fail("plan: unknown namespace \"%s\"", ns);
}

/* ---- the parts: each takes the records that fill it (returns 1), and no other ---- */

static int job_record(struct job_plan *j, enum plan_tag t, const char *const *f) {
    const char *tag = plan_tags[t].name;
    switch (t) {
    case TAG_LOCK: j->lock = f[0]; return 1;
    case TAG_STATE: j->state = f[0]; j->pidfile = f[1]; return 1;
    case TAG_BPMLOG: j->bpmlog = f[0]; j->log_base = f[1]; return 1;
    case TAG_LOGOWNER: j->log_uid = (uid_t)number(tag, f[0]); j->log_gid = (gid_t)number(tag, f[1]); return 1;
    case TAG_LOGLINES:
        /* Written to bpm.log as they are: whole lines only. */
        if (!*f[0] || f[0][strlen(f[0]) - 1] != '\n') fail("plan: loglines: not whole lines");
        j->loglines = f[0];
        return 1;
    case TAG_EVENT: j->event = f[0]; j->error_prefix = f[1]; return 1;
    default: return 0;
    }
}

static int cgroup_record(struct cgroup_plan *cg, enum plan_tag t, const char *const *f) {
    const char *tag = plan_tags[t].name;
    switch (t) {
    case TAG_CGDIR: *slot(cg->dirs, &cg->n_dirs, MAX_CGROUPS, "cgroup directories") = nonempty(tag, f[0]); return 1;
    case TAG_CGLEFTOVER: *slot(cg->leftovers, &cg->n_leftovers, MAX_CGROUPS, "cgroup directories") = nonempty(tag, f[0]); return 1;
    case TAG_CGENABLE: *slot(cg->enable, &cg->n_enable, MAX_CGROUPS, "cgroup parents") = f[0]; cg->controllers = f[1]; return 1;
    case TAG_CGLIMIT: {
        if (cg->n_limits >= MAX_LIMITS) fail("plan: too many cgroup limits");
        struct cglimit *l = &cg->limits[cg->n_limits++];
        l->file = f[0]; l->value = f[1]; l->optional = !strcmp(f[2], "optional");
        return 1;
    }
    case TAG_CGKILL: cg->kill_file = f[0]; return 1;
    case TAG_CGOOM: cg->oom_file = f[0]; return 1;
    case TAG_CGPARENTOOM: cg->parent_oom_file = f[0]; return 1;
    case TAG_CGSCOPE:
        if (!scope_name_ok(f[0])) fail("plan: cgscope: \"%s\" is not a job's scope", f[0]);
        cg->scope = f[0];
        return 1;
    case TAG_CGPROP: {
        if (cg->n_props >= MAX_PROPS) fail("plan: too many scope properties");
        struct cgprop *prop = &cg->props[cg->n_props++];
        prop->name = nonempty(tag, f[0]);
        prop->value = f[2];
        if (!strcmp(f[1], "t")) prop->number = number(tag, f[2]);
        else if (strcmp(f[1], "s") && strcmp(f[1], "b")) fail("plan: cgprop: unknown type \"%s\"", f[1]);
        prop->type = f[1][0];
        return 1;
    }
    case TAG_CGROUP: *slot(cg->procs, &cg->n_procs, MAX_CGROUPS, "cgroups") = nonempty(tag, f[0]); return 1;
    default: return 0;
    }
}

static int prepare_record(struct prepare_plan *p, enum plan_tag t, const char *const *f) {
    const char *tag = plan_tags[t].name;
    switch (t) {
    case TAG_PREP: {
        if (p->n_dirs >= MAX_PREPS) fail("plan: too many directories");
        struct prep *d = &p->dirs[p->n_dirs++];
        d->path = f[0];
        d->mode = (unsigned)number(tag, f[1]) & 07777;
        d->uid = (uid_t)number(tag, f[2]);
        d->gid = (gid_t)number(tag, f[3]);
        if (strcmp(f[4], "dir") && strcmp(f[4], "volume")) fail("plan: unknown directory kind \"%s\"", f[4]);
        d->file_ok = !strcmp(f[4], "volume");
        return 1;
    }
    case TAG_HOOK: p->hook = f[0]; return 1;
    case TAG_HOOKENV: *slot(p->hook_envp, &p->hook_envc, MAX_LIST, "environment variables for the hook") = f[0]; return 1;
    default: return 0;
    }
}

static struct op *new_op(struct mount_plan *m, enum op_kind kind) {
    if (m->n_ops >= MAX_OPS) fail("plan: too many mount operations");
    struct op *op = &m->ops[m->n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->tree_fd = -1;
    return op;
}

static int mount_record(struct mount_plan *m, enum plan_tag t, const char *const *f) {
    const char *tag = plan_tags[t].name;
    struct op *op;
    switch (t) {
    case TAG_SHARELOCK: m->share_lock = f[0]; return 1;
    case TAG_ROOTFS: m->rootfs = f[0]; return 1;
    case TAG_BIND:
        op = new_op(m, OP_BIND);
        op->src = f[0]; op->dst = f[1]; op->flags = mount_flags(f[2]);
        return 1;
    case TAG_FS:
        op = new_op(m, OP_FS);
        op->fstype = f[0]; op->src = f[1]; op->dst = f[2]; op->flags = mount_flags(f[3]); op->data = f[4];
        return 1;
    case TAG_MKNOD:
        op = new_op(m, OP_MKNOD);
        op->dst = f[0];
        op->major = (unsigned)number(tag, f[1]);
        op->minor = (unsigned)number(tag, f[2]);
        op->mode = (unsigned)number(tag, f[3]) & 07777;
        return 1;
    case TAG_SYMLINK: op = new_op(m, OP_SYMLINK); op->src = f[0]; op->dst = f[1]; return 1;
    case TAG_MASK: new_op(m, OP_MASK)->dst = f[0]; return 1;
    case TAG_READONLY: new_op(m, OP_READONLY)->dst = f[0]; return 1;
    case TAG_ROOTRO: new_op(m, OP_ROOT_RO)->flags = mount_flags(f[0]); return 1;
    default: return 0;
    }
}

static int identity_record(struct identity_plan *id, enum plan_tag t, const char *const *f) {
    const char *tag = plan_tags[t].name;
    switch (t) {
    case TAG_USER: id->uid = (uid_t)number(tag, f[0]); id->gid = (gid_t)number(tag, f[1]); return 1;
    case TAG_GROUP:
        if (id->n_groups >= MAX_GROUPS) fail("plan: too many groups");
        id->groups[id->n_groups++] = (gid_t)number(tag, f[0]);
        return 1;
    case TAG_CAPS: id->caps = number(tag, f[0]); return 1;
    case TAG_RLIMIT: {
        if (id->n_rlimits >= MAX_RLIMITS) fail("plan: too many rlimits");
        struct rlim *r = &id->rlimits[id->n_rlimits++];
        r->resource = rlimit_resource(f[0]);
        r->soft = rlimit_value(f[1]);
        r->hard = rlimit_value(f[2]);
        return 1;
    }
    case TAG_NONEWPRIVS: id->no_new_privs = 1; return 1;
    case TAG_SECCOMP: {
        size_t n = strlen(f[0]);
        if (n % 2 || n / 2 > 65536) fail("plan: bad seccomp program length");
        unsigned char *bytes = arena_alloc(n / 2 + 1);
        for (size_t i = 0; i < n / 2; i++) {
            int hi = hexval(f[0][2 * i]), lo = hexval(f[0][2 * i + 1]);
            if (hi < 0 || lo < 0) fail("plan: bad seccomp program");
            bytes[i] = (unsigned char)(hi << 4 | lo);
        }
        id->seccomp = bytes; id->seccomp_len = n / 2;
        return 1;
    }
    default: return 0;
    }
}

static int program_record(struct program_plan *p, enum plan_tag t, const char *const *f) {
    switch (t) {
    case TAG_CWD: p->cwd = f[0]; return 1;
    case TAG_EXE: p->exe = f[0]; return 1;
    case TAG_ARG: *slot(p->argv, &p->argc, MAX_LIST, "arguments") = f[0]; return 1;
    case TAG_ENV: *slot(p->envp, &p->envc, MAX_LIST, "environment variables") = f[0]; return 1;
    default: return 0;
    }
}

static void program_check(struct program_plan *p) {
    if (p->argc > 0 && !p->exe) fail("plan: arguments but no executable");
    p->argv[p->argc] = NULL;
    p->envp[p->envc] = NULL;
}

/* A record the table lets this kind carry that no part takes: wire.ts and this file disagree. */
static __attribute__((noreturn)) void not_read(enum plan_tag t) {
    fail("plan: record %s is not read by this helper", plan_tags[t].name);
}

/* ---- the kinds ---- */

static void launch_record(void *plan, enum plan_tag t, const char *const *f) {
    struct launch_plan *p = plan;
    if (job_record(&p->job, t, f) || cgroup_record(&p->cg, t, f) || prepare_record(&p->prepare, t, f) ||
        mount_record(&p->fs, t, f) || identity_record(&p->id, t, f) || program_record(&p->prog, t, f))
        return;
    switch (t) {
    case TAG_REFUSE: p->refuse = f[0]; break;
    case TAG_MODE:
        if (strcmp(f[0], "detach") && strcmp(f[0], "foreground")) fail("plan: unknown mode \"%s\"", f[0]);
        p->detach = !strcmp(f[0], "detach");
        break;
    case TAG_RECORD: p->record = f[0]; break;
    case TAG_LOGS: p->stdout_log = f[0]; p->stderr_log = f[1]; break;
    case TAG_NS: p->ns_flags |= namespace_flag(f[0]); break;
    case TAG_SUBREAPER: p->subreaper = 1; break;
    case TAG_STATUS: p->status_path = f[0]; break;
    case TAG_PAUSE: p->pause = 1; break;
    case TAG_REAPER: p->reaper = f[0]; break;
    default: not_read(t);
    }
}

static void enter_record(void *plan, enum plan_tag t, const char *const *f) {
    struct enter_plan *p = plan;
    if (identity_record(&p->id, t, f) || program_record(&p->prog, t, f)) return;
    const char *tag = plan_tags[t].name;
    switch (t) {
    case TAG_CGROUP: *slot(p->cgroup_procs, &p->n_cgroup_procs, MAX_CGROUPS, "cgroups") = nonempty(tag, f[0]); break;
    case TAG_NS: p->ns_flags |= namespace_flag(f[0]); break;
    case TAG_TARGET: {
        unsigned long long pid = number(tag, f[0]);
        if (pid < 2 || pid > 4194304) fail("plan: bad target pid %llu", pid);
        p->target = (pid_t)pid;
        break;
    }
    default: not_read(t);
    }
}

static void stop_record(void *plan, enum plan_tag t, const char *const *f) {
    struct stop_plan *p = plan;
    if (job_record(&p->job, t, f) || cgroup_record(&p->cg, t, f)) return;
    const char *tag = plan_tags[t].name;
    if (t != TAG_STOPTIMING) not_read(t);
    p->grace_ms = number(tag, f[0]);
    p->quit_ms = number(tag, f[1]);
    p->kill_ms = number(tag, f[2]);
}

static void log_record(void *plan, enum plan_tag t, const char *const *f) {
    struct log_plan *p = plan;
    if (job_record(&p->job, t, f)) return;
    if (t != TAG_LOGNEED) not_read(t);
    if (strcmp(f[0], "required") && strcmp(f[0], "wanted")) fail("plan: logneed: unknown need \"%s\"", f[0]);
    p->wanted = !strcmp(f[0], "wanted");
}

/* ---- framing ---- */

/* What a verb takes: its kinds of plan (1u << KIND_...), said as `takes`, and where their records go. */
struct reader {
    unsigned kinds;
    const char *takes;
    void (*record)(void *plan, enum plan_tag t, const char *const *f);
    void *plan;
};

/* The tag's number in the generated table, if a plan of this kind carries it. */
static enum plan_tag tag_of(const char *name, enum plan_kind kind) {
    for (int t = 0; t < TAG_COUNT; t++) {
        if (strcmp(plan_tags[t].name, name)) continue;
        if (!(plan_tags[t].kinds & 1u << kind)) fail("plan: record \"%s\" does not belong in a plan of kind %s", name, plan_kinds[kind]);
        return (enum plan_tag)t;
    }
    fail("plan: unknown record \"%s\"", name);
}

static void parse(enum plan_kind kind, const struct reader *r) {
    for (;;) {
        enum plan_tag t = tag_of(field("tag"), kind);
        if (t == TAG_END) break;
        const char *f[8];
        if (plan_tags[t].fields > sizeof f / sizeof f[0]) fail("plan: %s: too many fields", plan_tags[t].name);
        for (int i = 0; i < plan_tags[t].fields; i++) f[i] = field(plan_tags[t].name);
        r->record(r->plan, t, f);
    }
}

/* Checks "PLAN_VERSION <kind> <len>": a kind the reader takes; returns len. */
static size_t header(char *line, const struct reader *r, enum plan_kind *kind) {
    size_t vlen = strlen(PLAN_VERSION);
    if (strncmp(line, PLAN_VERSION " ", vlen + 1)) fail("plan: expected version %s, got \"%.40s\"", PLAN_VERSION, line);
    char *name = line + vlen + 1, *space = strchr(name, ' ');
    if (!space) fail("plan: no kind in the header");
    *space = '\0';
    int k = 0;
    while (k < KIND_COUNT && strcmp(plan_kinds[k], name)) k++;
    if (k == KIND_COUNT) fail("plan: unknown kind \"%.20s\"", name);
    if (!(r->kinds & 1u << k)) fail("plan: a plan of kind %s, where %s was expected", plan_kinds[k], r->takes);
    *kind = (enum plan_kind)k;
    unsigned long long len;
    if (parse_u64(space + 1, &len) || len == 0 || len > MAX_PLAN_BYTES) fail("plan: bad length");
    return (size_t)len;
}

static void parse_body(char *buf, size_t len, enum plan_kind kind, const struct reader *r) {
    /* The plan lives in static storage, zero from the start: no memset,
     * which would make the whole of it resident in the container's init. */
    cur = buf;
    end = buf + len;
    parse(kind, r);
}

static enum plan_kind read_fd(int fd, const struct reader *r) {
    char line[40];
    size_t n = 0;
    /* Header: "BPMPLAN3 <kind> <decimal length>\n", read a byte at a time. */
    for (;;) {
        if (n >= sizeof line - 1) fail("plan: header too long");
        ssize_t got = read(fd, &line[n], 1);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) die("plan: reading header");
        if (got == 0 && n == 0) _exit(0); /* the CLI closed the channel: nothing to launch */
        if (got == 0) fail("plan: header cut short");
        if (line[n] == '\n') break;
        n++;
    }
    line[n] = '\0';
    enum plan_kind kind;
    size_t len = header(line, r, &kind);
    char *buf = arena_alloc(len);
    if (read_exact(fd, buf, len)) die("plan: reading %zu bytes", len);
    parse_body(buf, len, kind, r);
    return kind;
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

static enum plan_kind read_env(const char *name, const struct reader *r) {
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
    char *nl = memchr(buf, '\n', n < 40 ? n : 40);
    if (!nl) fail("plan: no header");
    *nl = '\0';
    enum plan_kind kind;
    size_t body = header(buf, r, &kind);
    if ((size_t)(nl + 1 - buf) + body != n) fail("plan: length does not match");
    parse_body(nl + 1, body, kind, r);
    return kind;
}

static enum plan_kind read_plan(int from, const struct reader *r) {
    return from == PLAN_FROM_ENV ? read_env("BPM_PLAN", r) : read_fd(from, r);
}

int plan_source(const char *how) {
    if (!strcmp(how, "env")) return PLAN_FROM_ENV;
    if (strcmp(how, "fd")) fail("plan: unknown source \"%s\"", how);
    return 3;
}

void launch_plan_read(int from, struct launch_plan *p) {
    const struct reader r = {1u << KIND_LAUNCH | 1u << KIND_REFUSAL, "a launch or its refusal", launch_record, p};
    if (read_plan(from, &r) == KIND_REFUSAL) {
        if (!p->refuse) fail("plan: a refusal without its reason");
        return;
    }
    if (!p->stdout_log) fail("plan: a launch without the process's logs");
    program_check(&p->prog);
    p->prepare.hook_envp[p->prepare.hook_envc] = NULL;
}

void enter_plan_read(int from, struct enter_plan *p) {
    const struct reader r = {1u << KIND_ENTER, "an enter plan", enter_record, p};
    read_plan(from, &r);
    program_check(&p->prog);
}

void stop_plan_read(int from, struct stop_plan *p) {
    const struct reader r = {1u << KIND_STOP, "a stop plan", stop_record, p};
    read_plan(from, &r);
}

void log_plan_read(int from, struct log_plan *p) {
    const struct reader r = {1u << KIND_LOG, "a log plan", log_record, p};
    read_plan(from, &r);
    if (!p->job.bpmlog) fail("plan: a log plan without bpm.log");
}
