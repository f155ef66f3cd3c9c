// Every format the CLI and the helper share, defined here once: the C side
// (dist/gen/wire.h) is generated from this module at build time by
// build/gen-wire.mjs. Plain data and pure functions only: the generator
// imports it as it is.

/** The plan's header: "BPMPLAN2 <length>\n", then NUL-terminated fields. */
export const PLAN_VERSION = "BPMPLAN2";
/** What `bpm-helper version` says: the CLI checks an extracted helper with it. */
export const HELPER_VERSION = "bpm-helper 2";

/** Every plan record: its tag and how many fields follow it. */
export const PLAN_RECORDS = {
  end: 0,
  // The job's bookkeeping (start, run, stop).
  mode: 1, lock: 1, state: 2, bpmlog: 2, logowner: 2, event: 2, refuse: 1, record: 1, logs: 2,
  shutdown: 1, shutdowntimeout: 1, stoptiming: 3,
  // Its cgroup: joined (cgroup: a cgroup.procs), made and removed.
  cgroup: 1, cgdir: 1, cgleftover: 1, cgenable: 2, cglimit: 3, cgkill: 1, cgoom: 1,
  // With systemd as the cgroup manager: the job's transient scope (its unit name), and its properties (name, D-Bus type, value).
  cgscope: 1, cgprop: 3,
  // The container.
  ns: 1, prep: 5, hook: 1, hookenv: 1, sharelock: 1, rootfs: 1,
  bind: 3, fs: 5, mknod: 4, symlink: 2, mask: 1, readonly: 1, rootro: 1,
  // Who the program runs as, and what it runs.
  user: 2, group: 1, caps: 1, rlimit: 3, nonewprivs: 0, subreaper: 0, seccomp: 1,
  cwd: 1, exe: 1, arg: 1, env: 1, status: 1, pause: 0, reaper: 1,
  // shell: the running container's init to enter.
  target: 1,
} as const;

export type PlanTag = keyof typeof PLAN_RECORDS;

/** The largest plan the helper takes (the job's env and args are in it). */
export const MAX_PLAN_BYTES = 8 << 20;
/** The largest record either side reads: its body comes in the plan, the helper adds a short header. */
export const MAX_RECORD_BYTES = MAX_PLAN_BYTES + 4096;

/** The record of what start made (src/plan/record.ts composes it, helper-c/state.c writes it). */
export const RECORD_VERSION = "bpm-state 3";
/** What the previous version wrote: pid, start time, shutdown signal and timeout. */
export const LEGACY_RECORD_VERSION = "bpm-state 2";
/** The record's keys that both sides use. */
export const RECORD_KEYS = {
  pid: "pid",
  startTime: "start-time",
  bootId: "boot-id",
  startedAt: "started-at",
  shutdownSignal: "shutdown-signal",
  shutdownTimeoutMs: "shutdown-timeout-ms",
  cgroup: "cgroup",
  cgroupKill: "cgroup-kill",
  cgroupOom: "cgroup-oom",
  cgroupScope: "cgroup-scope",
  cgroupJoin: "cgroup-join",
} as const;

/** The names bpm gives jobs' systemd scopes (src/plan/cgroup.ts's scopeUnit): a plan or a record
 * naming any other unit is not acted on (a POSIX extended regular expression, for both sides). */
export const SCOPE_NAME_PATTERN = "^runc-([0-9a-f]{12}-)?bpm-[A-Za-z0-9_.-]+\\.scope$";

/** Signals the container's init passes on to the job (and the launch helper to the init). */
export const FORWARDED_SIGNALS = ["TERM", "INT", "QUIT", "HUP", "USR1", "USR2", "WINCH"] as const;

/** One bpm.log event as its line: the one definition of the line's shape. The
 * helper writes its events through EVENT_LINE_FORMAT, which build/gen-wire.mjs
 * derives from this function (its values as %s; the timestamp is ISO 8601 UTC
 * with milliseconds, as Date's toISOString writes it). */
export function eventLine(timestamp: string, level: string, message: string, data: Record<string, unknown>): string {
  return JSON.stringify({ timestamp, level, source: "bpm", message, data }) + "\n";
}
