// The record of what `start` made: everything later commands (stop, shell,
// trace, pid, list, logs) need, so that none of them reads bpm.yml again.
// Its body is composed here from the start plan, carried in that plan, and
// written by the helper alone (helper-c/state.c), after a header of what
// only the helper knows: the init's pid, its start time, the boot it ran in.
// Format: a version line, then "key value" lines; a value escapes "%" and
// line breaks as %XX. Readers: src/runtime/state.ts (everything) and
// helper-c/state.c (pid, start time, boot id, shutdown, cgroup).
import { posix } from "node:path";
import type { LaunchPlan, Namespace, Rlimit } from "./plan.ts";
import { LEGACY_RECORD_VERSION, RECORD_KEYS as K, RECORD_VERSION, SCOPE_NAME_PATTERN } from "./wire.ts";

const SCOPE_NAME = new RegExp(SCOPE_NAME_PATTERN);
/** A scope the record may name: only one bpm gives a job (the helper's reader is as strict). */
const scopeName = (v: string | undefined) => (v !== undefined && v.length <= 255 && SCOPE_NAME.test(v) ? v : null);


/** What a start recorded, as every later command reads it. */
export interface ProcessRecord {
  version: 2 | 3;
  pid: number;
  /** Start time of pid (clock ticks since boot), to tell it from a recycled pid. */
  startTime: number;
  /** The boot the process ran in: a pid from before a reboot is never live. Null in a legacy record. */
  bootId: string | null;
  startedAt: string;
  shutdownSignal: "TERM" | "INT";
  /** 0: not recorded (the default schedule's). */
  shutdownTimeoutMs: number;
  /** What follows only a version 3 record has. */
  entry: RecordedEntry | null;
}

/** How to re-enter the container as the job, and where its cgroup is: version 3 only. */
export interface RecordedEntry {
  job: string;
  process: string;
  cgroupDirs: string[];
  cgroupKill: string | null;
  cgroupOom: string;
  /** systemd: the job's scope unit; null where bpm made the cgroup itself. */
  cgroupScope: string | null;
  /** Hybrid with systemd: the scope's directories in name=systemd and the unified hierarchy, joined by shell and trace. */
  cgroupJoin: string[];
  namespaces: Namespace[];
  uid: number;
  gid: number;
  groups: number[];
  capabilities: string[];
  noNewPrivs: boolean;
  /** The BPF program as hex; null: none (a privileged job). */
  seccomp: string | null;
  rlimits: Rlimit[];
  cwd: string;
  env: Record<string, string>;
}

export const escapeValue = (v: string) => v.replace(/[%\n\r]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
export const unescapeValue = (v: string) => v.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));

/** The body of the record for a start plan: the lines after the helper's header. */
export function recordBody(plan: LaunchPlan): string {
  const j = plan.job;
  const lines: [string, string | number][] = [
    ["job", j.name.job],
    ["process", j.name.process],
    [K.shutdownSignal, j.shutdownSignal],
    [K.shutdownTimeoutMs, j.shutdownTimeoutMs],
    // The helper reads these: kept ahead of the long lines (seccomp, env).
    ...plan.cgroup.dirs.map((d) => [K.cgroup, d] as [string, string]),
    ...(plan.cgroup.killFile ? [[K.cgroupKill, plan.cgroup.killFile] as [string, string]] : []),
    [K.cgroupOom, plan.cgroup.oomFile],
    ...(plan.cgroup.scope ? [[K.cgroupScope, plan.cgroup.scope.unit] as [string, string]] : []),
    ...plan.cgroup.tracking.map((d) => [K.cgroupJoin, d] as [string, string]),
    ...plan.namespaces.map((n) => ["ns", n] as [string, string]),
    ["uid", plan.user.uid],
    ["gid", plan.user.gid],
    ...plan.user.groups.map((g) => ["group", g] as [string, number]),
    ...plan.capabilities.map((c) => ["cap", c] as [string, string]),
    ["no-new-privs", plan.noNewPrivs ? 1 : 0],
    ...plan.rlimits.map((r) => ["rlimit", `${r.name} ${r.soft} ${r.hard}`] as [string, string]),
    ["cwd", plan.cwd],
    ...Object.entries(plan.env).map(([k, v]) => ["env", `${k}=${v}`] as [string, string]),
    ...(plan.seccomp ? [["seccomp", Buffer.from(plan.seccomp).toString("hex")] as [string, string]] : []),
  ];
  return lines.map(([k, v]) => `${k} ${escapeValue(String(v))}\n`).join("");
}

const NAMESPACES = new Set<string>(["mount", "ipc", "uts", "pid"]);
const limitValue = (s: string | undefined) => (s === "unlimited" ? "unlimited" : Number(s));

/** Parses a record's text; null if it is no record of a version we read. */
export function parseRecord(text: string): ProcessRecord | null {
  const lines = text.split("\n");
  const version = lines[0] === RECORD_VERSION ? 3 : lines[0] === LEGACY_RECORD_VERSION ? 2 : null;
  if (version === null) return null;
  const one = new Map<string, string>();
  const many = new Map<string, string[]>();
  for (const line of lines.slice(1)) {
    const space = line.indexOf(" ");
    if (space <= 0) continue;
    const key = line.slice(0, space);
    const value = unescapeValue(line.slice(space + 1));
    if (!one.has(key)) one.set(key, value);
    many.set(key, [...(many.get(key) ?? []), value]);
  }
  const num = (k: string) => Number(one.get(k));
  const pid = num(K.pid);
  const startTime = num(K.startTime);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(startTime) || !one.has(K.startTime)) return null;
  const at = num(K.startedAt);
  const timeout = num(K.shutdownTimeoutMs);
  const record: ProcessRecord = {
    version,
    pid,
    startTime,
    bootId: one.get(K.bootId) ?? null,
    startedAt: new Date(Number.isFinite(at) ? at : 0).toISOString(),
    shutdownSignal: one.get(K.shutdownSignal) === "INT" ? "INT" : "TERM",
    shutdownTimeoutMs: Number.isInteger(timeout) && timeout > 0 ? timeout : 0,
    entry: null,
  };
  if (version === 2) return record;
  const list = (k: string) => many.get(k) ?? [];
  const env: Record<string, string> = {};
  for (const kv of list("env")) env[kv.slice(0, kv.indexOf("="))] = kv.slice(kv.indexOf("=") + 1);
  const job = one.get("job");
  const proc = one.get("process");
  const cwd = one.get("cwd");
  if (!job || !proc || !cwd || !posix.isAbsolute(cwd) || !one.has("uid") || !one.has("gid")) return null;
  record.entry = {
    job,
    process: proc,
    cgroupDirs: list(K.cgroup),
    cgroupKill: one.get(K.cgroupKill) ?? null,
    cgroupOom: one.get(K.cgroupOom) ?? "",
    cgroupScope: scopeName(one.get(K.cgroupScope)),
    cgroupJoin: list(K.cgroupJoin).filter((d) => posix.isAbsolute(d)),
    namespaces: list("ns").filter((n): n is Namespace => NAMESPACES.has(n)),
    uid: num("uid"),
    gid: num("gid"),
    groups: list("group").map(Number),
    capabilities: list("cap"),
    noNewPrivs: one.get("no-new-privs") === "1",
    seccomp: one.get("seccomp") ?? null,
    rlimits: list("rlimit").map((r) => {
      const [name, soft, hard] = r.split(" ");
      return { name: name as Rlimit["name"], soft: limitValue(soft), hard: limitValue(hard) };
    }),
    cwd,
    env,
  };
  return record;
}
