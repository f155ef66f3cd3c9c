#define _GNU_SOURCE
#include "identity.h"
#include "util.h"
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LAST_CAP 63

void identity_set_rlimits(const struct plan *p) {
    for (int i = 0; i < p->n_rlimits; i++) {
        struct rlimit r = {.rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard};
        if (setrlimit(p->rlimits[i].resource, &r))
            die("set rlimit %d to %llu/%llu (above what bpm itself was given?)", p->rlimits[i].resource,
                p->rlimits[i].soft, p->rlimits[i].hard);
    }
}

static void set_user(const struct plan *p) {
    if (setgroups((size_t)p->n_groups, p->groups)) die("setgroups");
    if (setresgid(p->gid, p->gid, p->gid)) die("setgid %u", (unsigned)p->gid);
    if (setresuid(p->uid, p->uid, p->uid)) die("setuid %u", (unsigned)p->uid);
}

static void set_caps(uint64_t caps) {
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2] = {
        {.effective = (uint32_t)caps, .permitted = (uint32_t)caps, .inheritable = (uint32_t)caps},
        {.effective = (uint32_t)(caps >> 32), .permitted = (uint32_t)(caps >> 32), .inheritable = (uint32_t)(caps >> 32)},
    };
    if (syscall(SYS_capset, &hdr, data)) die("capset");
}

/* Lowers the bounding set to caps: only while we still hold CAP_SETPCAP. */
static void keep_bounding(uint64_t caps) {
    for (int c = 0; c <= LAST_CAP; c++) {
        if (caps & (1ULL << c)) continue;
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) && errno != EINVAL) die("drop capability %d from bounding set", c);
    }
}

void identity_become_job(const struct plan *p) {
    identity_set_rlimits(p);
    keep_bounding(p->caps);
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)) die("keep capabilities");
    set_user(p);
    set_caps(p->caps);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)) die("clear ambient capabilities");
    for (int c = 0; c <= LAST_CAP; c++) {
        if (!(p->caps & (1ULL << c))) continue;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0)) die("raise ambient capability %d", c);
    }
    if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) die("set no_new_privs");
    if (p->cwd && chdir(p->cwd)) die("chdir to %s", p->cwd);
    if (p->seccomp_len) {
        if (p->seccomp_len % sizeof(struct sock_filter)) fail("seccomp program has a partial instruction");
        struct sock_fprog prog = {.len = (unsigned short)(p->seccomp_len / sizeof(struct sock_filter)),
                                  .filter = (struct sock_filter *)(void *)p->seccomp};
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) die("load seccomp filter");
    }
}

void identity_drop_init(const struct plan *p) {
    /* Never more than the job may have: a privileged job's init stays root,
     * with the job's capabilities (and, once it exec's the reaper, no others). */
    keep_bounding(p->caps);
    set_user(p);
    set_caps(p->uid == 0 ? p->caps : 0);
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) die("set init not dumpable");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) die("set no_new_privs on init");
}
