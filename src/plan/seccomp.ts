// The seccomp policy every unprivileged job runs under, and its assembly
// into a BPF program for this machine's architecture. The allow-list is the
// original bpm's (itself Garden's), with what newer libcs and runtimes call
// added; anything else fails with EPERM.
import { constants } from "node:os";
import { decisionTree, encode, jeq, jge, jset, ld, ret, type Insn, type Segment } from "./bpf.ts";
import { syscallTable, type Arch } from "./syscalls.ts";

/** Allowed outright. Names a table lacks (32-bit or other-arch calls) are skipped. */
export const ALLOWED = [
  "_llseek", "_newselect", "accept", "accept4", "access", "alarm", "arch_prctl", "bind", "brk", "capget", "capset",
  "chdir", "chmod", "chown", "chown32", "chroot", "clock_getres", "clock_gettime", "clock_nanosleep", "close",
  "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl",
  "epoll_ctl_old", "epoll_pwait", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit",
  "exit_group", "faccessat", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat",
  "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork",
  "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
  "ftruncate64", "futex", "futimesat", "get_robust_list", "get_thread_area", "getcpu", "getcwd", "getdents",
  "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
  "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid",
  "getresgid32", "getresuid", "getresuid32", "getrlimit", "getrusage", "getsid", "getsockname", "getsockopt", "gettid",
  "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1",
  "inotify_rm_watch", "io_cancel", "io_destroy", "io_getevents", "io_setup", "io_submit", "ioctl", "ioprio_get",
  "ioprio_set", "ipc", "kill", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr",
  "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "memfd_create", "mincore", "mkdir", "mkdirat",
  "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "modify_ldt", "mprotect", "mq_getsetattr",
  "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv",
  "msgsnd", "msync", "munlock", "munlockall", "munmap", "nanosleep", "newfstatat", "open", "openat", "openat2", "pause",
  "pipe", "pipe2", "poll", "ppoll", "prctl", "pread64", "preadv", "prlimit64", "pselect6", "pwrite64", "pwritev", "read",
  "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmsg", "remap_file_pages",
  "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rt_sigaction", "rt_sigpending",
  "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo",
  "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam",
  "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity", "sched_setattr", "sched_setparam",
  "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop", "semtimedop", "send",
  "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "set_robust_list", "set_thread_area", "set_tid_address",
  "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
  "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32",
  "setreuid", "setreuid32", "setrlimit", "setsid", "setsockopt", "setuid", "setuid32", "setxattr", "shmat", "shmctl",
  "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigreturn", "socket", "socketcall",
  "socketpair", "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
  "sync_file_range", "syncfs", "sysinfo", "syslog", "tee", "tgkill", "time", "timer_create", "timer_delete",
  "timer_getoverrun", "timer_gettime", "timer_settime", "timerfd_create", "timerfd_gettime", "timerfd_settime", "times",
  "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat",
  "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write", "writev",
  // Added: what current glibc, Go, Node.js and the JVM call, none of which
  // reaches beyond the job's own processes and files.
  "close_range", "epoll_pwait2", "faccessat2", "futex_waitv", "io_pgetevents", "membarrier", "pidfd_open",
  "pidfd_send_signal", "pkey_alloc", "pkey_free", "pkey_mprotect", "preadv2", "pwritev2", "rseq",
  "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
] as const;

/** Flags that would make clone create namespaces (NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET). */
export const CLONE_NAMESPACE_FLAGS = 0x7e020000;
/** personality(2) values allowed: PER_LINUX, PER_LINUX32, and the query 0xffffffff. */
export const ALLOWED_PERSONAS = [0x0, 0x8, 0xffffffff];

export const AUDIT_ARCH: Record<Arch, number> = { x86_64: 0xc000003e, aarch64: 0xc00000b7 };
/** x86_64's x32 ABI marks its syscall numbers with this bit; refused. */
export const X32_SYSCALL_BIT = 0x40000000;

export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const retErrno = (errno: number) => 0x00050000 | (errno & 0xffff);
const EPERM = constants.errno.EPERM;
const ENOSYS = constants.errno.ENOSYS;

// struct seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8i (low word first).
const NR = 0;
const ARCH = 4;
const ARG0 = 16;

const allow = ret(SECCOMP_RET_ALLOW);
const deny = ret(retErrno(EPERM));

/** The filter for one architecture, as BPF instructions. */
export function seccompProgram(arch: Arch): Insn[] {
  const table = syscallTable(arch);
  const verdicts = new Map<number, Insn[]>();
  for (const name of ALLOWED) if (table[name] !== undefined) verdicts.set(table[name]!, [allow]);
  // clone: only without namespace flags (a thread or a process, never a container).
  verdicts.set(table.clone!, [ld(ARG0), jset(CLONE_NAMESPACE_FLAGS, 1, 0), allow, deny]);
  // clone3 passes its flags in memory, out of a filter's reach: ENOSYS makes libcs use clone.
  verdicts.set(table.clone3!, [ret(retErrno(ENOSYS))]);
  const p = ALLOWED_PERSONAS;
  verdicts.set(table.personality!, [ld(ARG0), ...p.map((v, i) => jeq(v, p.length - i, 0)), deny, allow]);

  // Every number falls in one segment: its own verdict, or a denied gap.
  const segments: Segment[] = [];
  let next = 0;
  for (const nr of [...verdicts.keys()].sort((x, y) => x - y)) {
    if (nr > next) segments.push({ start: next, code: [deny] });
    segments.push({ start: nr, code: verdicts.get(nr)! });
    next = nr + 1;
  }
  segments.push({ start: next, code: [deny] });
  return [
    ld(ARCH),
    jeq(AUDIT_ARCH[arch], 1, 0),
    deny, // another architecture's numbers mean other calls: refuse them all
    ld(NR),
    ...(arch === "x86_64" ? [jge(X32_SYSCALL_BIT, 0, 1), deny] : []),
    ...decisionTree(mergeRuns(segments)),
  ];
}

/** Joins neighbouring segments that end the same way (a run of allowed calls, say). */
function mergeRuns(segments: Segment[]): Segment[] {
  const out: Segment[] = [];
  for (const s of segments) {
    const prev = out[out.length - 1];
    if (prev && prev.code.length === 1 && s.code.length === 1 && prev.code[0] === s.code[0]) continue;
    out.push(s);
  }
  return out;
}

declare const BPM_SECCOMP_FILTERS: Partial<Record<Arch, string>> | undefined;

/** The job's filter for arch, encoded: computed at build time (build/build.mjs
 * runs jobFilter itself) or, in tests and unbundled runs, here. */
export function jobFilter(arch: Arch): Uint8Array {
  const built = typeof BPM_SECCOMP_FILTERS === "object" ? BPM_SECCOMP_FILTERS[arch] : undefined;
  return built !== undefined ? Buffer.from(built, "hex") : encode(seccompProgram(arch));
}

export function hostArch(): Arch {
  if (process.arch === "x64") return "x86_64";
  if (process.arch === "arm64") return "aarch64";
  throw new Error(`no seccomp syscall table for ${process.arch}`);
}
