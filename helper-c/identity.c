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

void identity_set_rlimits(const struct identity_plan *id) {
    for (int i = 0; i < id->n_rlimits; i++) {
        struct rlimit r = {.rlim_cur = id->rlimits[i].soft, .rlim_max = id->rlimits[i].hard};
        if (setrlimit(id->rlimits[i].resource, &r))
            die("set rlimit %d to %llu/%llu (above what bpm itself was given?)", id->rlimits[i].resource,
                id->rlimits[i].soft, id->rlimits[i].hard);
    }
}

static void set_user(const struct identity_plan *id) {
    if (setgroups((size_t)id->n_groups, id->groups)) die("setgroups");
    if (setresgid(id->gid, id->gid, id->gid)) die("setgid %u", (unsigned)id->gid);
    if (setresuid(id->uid, id->uid, id->uid)) die("setuid %u", (unsigned)id->uid);
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

void identity_become_job(const struct identity_plan *id, const char *cwd) {
    identity_set_rlimits(id);
    keep_bounding(id->caps);
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)) die("keep capabilities");
    set_user(id);
    set_caps(id->caps);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)) die("clear ambient capabilities");
    for (int c = 0; c <= LAST_CAP; c++) {
        if (!(id->caps & (1ULL << c))) continue;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0)) die("raise ambient capability %d", c);
    }
    if (id->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) die("set no_new_privs");
    if (cwd && chdir(cwd)) die("chdir to %s", cwd);
    if (id->seccomp_len) {
        if (id->seccomp_len % sizeof(struct sock_filter)) fail("seccomp program has a partial instruction");
        struct sock_fprog prog = {.len = (unsigned short)(id->seccomp_len / sizeof(struct sock_filter)),
                                  .filter = (struct sock_filter *)(void *)id->seccomp};
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) die("load seccomp filter");
    }
}

void identity_drop_init(const struct identity_plan *id) {
    /* Never more than the job may have: a privileged job's init stays root,
     * with the job's capabilities (and, once it exec's the reaper, no others). */
    keep_bounding(id->caps);
    set_user(id);
    set_caps(id->uid == 0 ? id->caps : 0);
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) die("set init not dumpable");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) die("set no_new_privs on init");
}
