// Every format the CLI and the helper share, defined here once: the C side
// (dist/gen/wire.h) is generated from this module at build time by
// build/gen-wire.mjs. Plain data and pure functions only: the generator
// imports it as it is.

/** The plan's header: "BPMPLAN3 <kind> <length>\n", then NUL-terminated fields. */
export const PLAN_VERSION = "BPMPLAN3";
/** What `bpm-helper version` says: the CLI checks an extracted helper with it. */
export const HELPER_VERSION = "bpm-helper 2";

/** The kinds of plan, named in its header: launch, or the refusal of one (the helper's start and
 * launch verbs take either), enter (shell), stop (stop), log (log: bpm.log lines from the CLI). */
export const PLAN_KINDS = ["launch", "refusal", "enter", "stop", "log"] as const;
export type PlanKind = (typeof PLAN_KINDS)[number];

// Which kinds carry a record: the helper refuses a record in a plan of any other kind.
const ALL = PLAN_KINDS;
const BOOK = ["launch", "refusal", "stop"] as const;
const LOGGED = [...BOOK, "log"] as const;
const CGROUP = ["launch", "stop"] as const;
const LAUNCH = ["launch"] as const;
const ENTERED = ["launch", "enter"] as const;

/** Every plan record: its tag, how many fields follow it, and the kinds of plan that carry it. */
export const PLAN_RECORDS = {
  end: { fields: 0, kinds: ALL },
  // The job's bookkeeping (start, run, stop; a refusal takes the lock and reads the state too).
  lock: { fields: 1, kinds: BOOK }, state: { fields: 2, kinds: BOOK }, event: { fields: 2, kinds: BOOK },
  // bpm.log and whose the job's logs are; the CLI's bpm.log lines (eventLine's, in order), which
  // the helper writes first; whether the command fails without bpm.log (required) or not (wanted: stop).
  bpmlog: { fields: 2, kinds: LOGGED }, logowner: { fields: 2, kinds: LOGGED }, loglines: { fields: 1, kinds: LOGGED },
  logneed: { fields: 1, kinds: ["log"] },
  refuse: { fields: 1, kinds: ["refusal"] },
  mode: { fields: 1, kinds: LAUNCH }, record: { fields: 1, kinds: LAUNCH }, logs: { fields: 2, kinds: LAUNCH },
  stoptiming: { fields: 3, kinds: ["stop"] },
  // Its cgroup, made by a launch and removed by it or a stop.
  cgdir: { fields: 1, kinds: CGROUP }, cgleftover: { fields: 1, kinds: CGROUP }, cgkill: { fields: 1, kinds: CGROUP },
  cgenable: { fields: 2, kinds: LAUNCH }, cglimit: { fields: 3, kinds: LAUNCH }, cgoom: { fields: 1, kinds: LAUNCH },
  // In a systemd scope: its parent's OOM count, which outlives the scope's cgroup.
  cgparentoom: { fields: 1, kinds: LAUNCH },
  // With systemd as the cgroup manager: the job's transient scope (its unit name), and its properties (name, D-Bus type, value).
  cgscope: { fields: 1, kinds: CGROUP }, cgprop: { fields: 3, kinds: LAUNCH },
  // The cgroups joined (each a cgroup.procs), and the namespaces made or entered.
  cgroup: { fields: 1, kinds: ENTERED }, ns: { fields: 1, kinds: ENTERED },
  // The container.
  prep: { fields: 5, kinds: LAUNCH }, hook: { fields: 1, kinds: LAUNCH }, hookenv: { fields: 1, kinds: LAUNCH },
  sharelock: { fields: 1, kinds: LAUNCH }, rootfs: { fields: 1, kinds: LAUNCH },
  bind: { fields: 3, kinds: LAUNCH }, fs: { fields: 5, kinds: LAUNCH }, mknod: { fields: 4, kinds: LAUNCH },
  symlink: { fields: 2, kinds: LAUNCH }, mask: { fields: 1, kinds: LAUNCH }, readonly: { fields: 1, kinds: LAUNCH },
  rootro: { fields: 1, kinds: LAUNCH },
  // Who the program runs as, and what it runs.
  user: { fields: 2, kinds: ENTERED }, group: { fields: 1, kinds: ENTERED }, caps: { fields: 1, kinds: ENTERED },
  rlimit: { fields: 3, kinds: ENTERED }, nonewprivs: { fields: 0, kinds: ENTERED }, seccomp: { fields: 1, kinds: ENTERED },
  cwd: { fields: 1, kinds: ENTERED }, exe: { fields: 1, kinds: ENTERED }, arg: { fields: 1, kinds: ENTERED }, env: { fields: 1, kinds: ENTERED },
  // The container's init.
  subreaper: { fields: 0, kinds: LAUNCH }, status: { fields: 1, kinds: LAUNCH }, pause: { fields: 0, kinds: LAUNCH }, reaper: { fields: 1, kinds: LAUNCH },
  // shell: the running container's init to enter.
  target: { fields: 1, kinds: ["enter"] },
} as const satisfies Record<string, { fields: number; kinds: readonly PlanKind[] }>;

export type PlanTag = keyof typeof PLAN_RECORDS;
/** The tags that plans of every kind in K carry (the encoder's records are typed by it). */
export type TagsOf<K extends PlanKind> = { [T in PlanTag]: [K] extends [(typeof PLAN_RECORDS)[T]["kinds"][number]] ? T : never }[PlanTag];

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
