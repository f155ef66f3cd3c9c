#define _GNU_SOURCE
#include "dump.h"
#include "plan.h"
#include "state.h"
#include "util.h"
#include "wire.h"
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>

/* A field, with the bytes that would break a line escaped. */
static void put(const char *s) {
    putchar('\t');
    for (; *s; s++) {
        if (*s == '\\') fputs("\\\\", stdout);
        else if (*s == '\t') fputs("\\t", stdout);
        else if (*s == '\n') fputs("\\n", stdout);
        else putchar(*s);
    }
}

static void line(const char *tag, int n, ...) {
    fputs(tag, stdout);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) put(va_arg(ap, const char *));
    va_end(ap);
    putchar('\n');
}

static const char *num(unsigned long long v) {
    static char bufs[8][24];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 24, "%llu", v);
    return b;
}

static const char *limit(unsigned long long v) { return v == RLIM_INFINITY ? "unlimited" : num(v); }

static const char *flags(unsigned long f) {
    static const struct { const char *name; unsigned long flag; } names[] = {
        {"ro", MS_RDONLY}, {"nosuid", MS_NOSUID}, {"nodev", MS_NODEV}, {"noexec", MS_NOEXEC}, {"rec", MS_REC}, {"shared", MS_SHARED},
    };
    static char bufs[2][128];
    static int next;
    char *b = bufs[next++ % 2];
    b[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (f & names[i].flag) { if (b[0]) strcat(b, ","); strcat(b, names[i].name); }
    return b;
}

static const char *rlimit_name(int r) { return r == RLIMIT_NOFILE ? "nofile" : r == RLIMIT_CORE ? "core" : "nproc"; }

/* bpm.log, its owner and the CLI's lines: every plan that writes bpm.log has them. */
static void dump_bpmlog(const struct job_plan *j) {
    if (j->bpmlog) line("bpmlog", 2, j->bpmlog, j->log_base);
    line("logowner", 2, num(j->log_uid), num(j->log_gid));
    if (j->loglines) line("loglines", 1, j->loglines);
}

static void dump_job(const struct job_plan *j) {
    line("lock", 1, j->lock);
    line("state", 2, j->state, j->pidfile);
    dump_bpmlog(j);
    line("event", 2, j->event, j->error_prefix);
}

/* What removing the cgroup takes (a stop's whole cgroup), then what making it takes. */
static void dump_cgroup_removal(const struct cgroup_plan *cg) {
    for (int i = 0; i < cg->n_dirs; i++) line("cgdir", 1, cg->dirs[i]);
    for (int i = 0; i < cg->n_leftovers; i++) line("cgleftover", 1, cg->leftovers[i]);
    if (cg->kill_file) line("cgkill", 1, cg->kill_file);
    if (cg->scope) line("cgscope", 1, cg->scope);
}

static void dump_cgroup_making(const struct cgroup_plan *cg) {
    for (int i = 0; i < cg->n_enable; i++) line("cgenable", 2, cg->enable[i], cg->controllers);
    for (int i = 0; i < cg->n_limits; i++) line("cglimit", 3, cg->limits[i].file, cg->limits[i].value, cg->limits[i].optional ? "optional" : "required");
    if (cg->oom_file) line("cgoom", 1, cg->oom_file);
    if (cg->parent_oom_file) line("cgparentoom", 1, cg->parent_oom_file);
    for (int i = 0; i < cg->n_props; i++) line("cgprop", 3, cg->props[i].name, (char[]){cg->props[i].type, '\0'}, cg->props[i].value);
    for (int i = 0; i < cg->n_procs; i++) line("cgroup", 1, cg->procs[i]);
}

static void dump_namespaces(int flags) {
    static const struct { int flag; const char *name; } ns[] = {{CLONE_NEWNS, "mount"}, {CLONE_NEWIPC, "ipc"}, {CLONE_NEWUTS, "uts"}, {CLONE_NEWPID, "pid"}};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        if (flags & ns[i].flag) line("ns", 1, ns[i].name);
}

static void dump_prepare(const struct prepare_plan *p) {
    for (int i = 0; i < p->n_dirs; i++) {
        const struct prep *d = &p->dirs[i];
        line("prep", 5, d->path, num(d->mode), num(d->uid), num(d->gid), d->file_ok ? "volume" : "dir");
    }
    if (p->hook) line("hook", 1, p->hook);
    for (int i = 0; i < p->hook_envc; i++) line("hookenv", 1, p->hook_envp[i]);
}

static void dump_mounts(const struct mount_plan *m) {
    if (m->share_lock) line("sharelock", 1, m->share_lock);
    if (m->rootfs) line("rootfs", 1, m->rootfs);
    for (int i = 0; i < m->n_ops; i++) {
        const struct op *o = &m->ops[i];
        switch (o->kind) {
        case OP_BIND: line("bind", 3, o->src, o->dst, flags(o->flags)); break;
        case OP_FS: line("fs", 5, o->fstype, o->src, o->dst, flags(o->flags), o->data); break;
        case OP_MKNOD: line("mknod", 4, o->dst, num(o->major), num(o->minor), num(o->mode)); break;
        case OP_SYMLINK: line("symlink", 2, o->src, o->dst); break;
        case OP_MASK: line("mask", 1, o->dst); break;
        case OP_READONLY: line("readonly", 1, o->dst); break;
        case OP_ROOT_RO: line("rootro", 1, flags(o->flags)); break;
        }
    }
}

static void dump_identity(const struct identity_plan *id) {
    line("user", 2, num(id->uid), num(id->gid));
    for (int i = 0; i < id->n_groups; i++) line("group", 1, num(id->groups[i]));
    line("caps", 1, num(id->caps));
    for (int i = 0; i < id->n_rlimits; i++) line("rlimit", 3, rlimit_name(id->rlimits[i].resource), limit(id->rlimits[i].soft), limit(id->rlimits[i].hard));
    if (id->no_new_privs) line("nonewprivs", 0);
    if (id->seccomp) {
        static char hex[2 * 65536 + 1];
        for (size_t i = 0; i < id->seccomp_len; i++) snprintf(hex + 2 * i, 3, "%02x", id->seccomp[i]);
        line("seccomp", 1, hex);
    }
}

static void dump_program(const struct program_plan *p) {
    line("cwd", 1, p->cwd);
    line("exe", 1, p->exe);
    for (int i = 0; i < p->argc; i++) line("arg", 1, p->argv[i]);
    for (int i = 0; i < p->envc; i++) line("env", 1, p->envp[i]);
}

/* The plans are static: zero from the start, as the verbs' are. */
static struct launch_plan launch;
static struct enter_plan enter;
static struct stop_plan stop;
static struct log_plan logp;

static void dump_launch(void) {
    const struct launch_plan *p = &launch;
    line("kind", 1, p->refuse ? "refusal" : "launch");
    dump_job(&p->job);
    if (p->refuse) {
        line("refuse", 1, p->refuse);
        return;
    }
    line("mode", 1, p->detach ? "detach" : "foreground");
    if (p->stdout_log) line("logs", 2, p->stdout_log, p->stderr_log);
    if (p->record) line("record", 1, p->record);
    dump_cgroup_removal(&p->cg);
    dump_cgroup_making(&p->cg);
    dump_namespaces(p->ns_flags);
    dump_prepare(&p->prepare);
    dump_mounts(&p->fs);
    dump_identity(&p->id);
    dump_program(&p->prog);
    if (p->subreaper) line("subreaper", 0);
    if (p->status_path) line("status", 1, p->status_path);
    if (p->pause) line("pause", 0);
    if (p->reaper) line("reaper", 1, p->reaper);
}

static void dump_enter(void) {
    const struct enter_plan *p = &enter;
    line("kind", 1, "enter");
    for (int i = 0; i < p->n_cgroup_procs; i++) line("cgroup", 1, p->cgroup_procs[i]);
    dump_namespaces(p->ns_flags);
    dump_identity(&p->id);
    dump_program(&p->prog);
    line("target", 1, num((unsigned long long)p->target));
}

static void dump_stop(void) {
    const struct stop_plan *p = &stop;
    line("kind", 1, "stop");
    dump_job(&p->job);
    if (p->grace_ms || p->quit_ms || p->kill_ms) line("stoptiming", 3, num(p->grace_ms), num(p->quit_ms), num(p->kill_ms));
    dump_cgroup_removal(&p->cg);
}

static void dump_log(void) {
    line("kind", 1, "log");
    dump_bpmlog(&logp.job);
    line("logneed", 1, logp.wanted ? "wanted" : "required");
}

int plan_dump_main(const char *verb) {
    if (!strcmp(verb, "start") || !strcmp(verb, "launch")) launch_plan_read(0, &launch), dump_launch();
    else if (!strcmp(verb, "shell")) enter_plan_read(0, &enter), dump_enter();
    else if (!strcmp(verb, "stop")) stop_plan_read(0, &stop), dump_stop();
    else if (!strcmp(verb, "log")) log_plan_read(0, &logp), dump_log();
    else fail("plan-dump: unknown verb \"%s\"", verb);
    return fflush(stdout) ? 1 : 0;
}

int state_dump_main(const char *path) {
    struct state s;
    if (!state_read_file(path, &s)) {
        puts("none");
        return 0;
    }
    printf("version %d\n", s.version);
    printf(RECORD_KEY_PID " %d\n", (int)s.pid);
    printf(RECORD_KEY_START_TIME " %llu\n", s.start_time);
    if (s.boot_id[0]) printf(RECORD_KEY_BOOT_ID " %s\n", s.boot_id);
    printf(RECORD_KEY_SHUTDOWN_SIGNAL " %s\n", s.shutdown_signal);
    printf(RECORD_KEY_SHUTDOWN_TIMEOUT_MS " %llu\n", s.shutdown_timeout_ms);
    for (int i = 0; i < s.cg.n_dirs; i++) printf(RECORD_KEY_CGROUP " %s\n", s.cg.dirs[i]);
    if (s.cg.kill_file) printf(RECORD_KEY_CGROUP_KILL " %s\n", s.cg.kill_file);
    if (s.cg.oom_file) printf(RECORD_KEY_CGROUP_OOM " %s\n", s.cg.oom_file);
    if (s.cg.scope) printf(RECORD_KEY_CGROUP_SCOPE " %s\n", s.cg.scope);
    printf("live %d\n", state_running(&s));
    return fflush(stdout) ? 1 : 0;
}
