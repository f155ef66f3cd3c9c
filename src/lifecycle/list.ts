// `bpm list`: every process of every job with a bpm.yml or a record, with
// its status computed from the record and the live process table. It never fails
// on what sits beside a job's state (a stray file, a start or stop under
// way): whatever is not a job's state, or vanishes while read, is skipped.
import { readdirSync, existsSync, type Dirent } from "node:fs";
import { boshRoot, bpmDirs, decodeContainerId, jobPaths, reservedJobName, type ExternalPath } from "../bosh/paths.ts";
import { configKey, readCachedConfig } from "../config/cache.ts";
import { printable } from "../config/problems.ts";
import { cgroupFsRoot, cgroupUsage, jobCgroup, placedCounters, recordedCounters } from "../runtime/cgroups.ts";
import { readExit, readState, statusOf, type ExitRecord, type ProcessRecord, type Status } from "../runtime/state.ts";

/** What bpm.yml says of a process today: it names it; it does not (renamed,
 * removed); it cannot be read; there is none (the job is gone). */
export type ConfigStatus = "named" | "not-named" | "unreadable" | "missing";

export interface ProcessRow {
  name: string;
  job: string;
  process: string;
  status: Status;
  pid: number | null;
  config: ConfigStatus;
  lastExit: (Omit<ExitRecord, "oomKills"> & { oomKilled: boolean }) | null;
  memoryBytes: number | null;
  pids: number | null;
  /** CPU time used and time throttled by limits.cpu, in seconds (v1: only for jobs with CPU limits). */
  cpuSeconds: number | null;
  cpuThrottledSeconds: number | null;
}

export interface Listing {
  rows: ProcessRow[];
  warnings: string[];
}

/** What a row needs beyond name, pid and status: how the process last ended, its cgroup usage. */
export interface Detail {
  exit: boolean;
  usage: boolean;
}

/** How the process ended: an OOM kill where the count its init recorded (or, from an older bpm, its cgroup's) says so. */
function lastExit({ oomKills, ...exit }: ExitRecord, inCgroup: number | null): ProcessRow["lastExit"] {
  return { ...exit, oomKilled: exit.signal === 9 && (oomKills ?? inCgroup ?? 0) > 0 };
}

function row(root: ExternalPath, job: string, proc: string, config: ConfigStatus, state: ProcessRecord | null, detail: Detail): ProcessRow {
  const paths = jobPaths(root, job, proc);
  const status = statusOf(state);
  const exit = detail.exit ? readExit(paths) : null;
  // The cgroup's counters, where start recorded it: for --json, or to tell an OOM kill from another SIGKILL.
  const counters = () => (state!.entry && recordedCounters(state!.entry)) || placedCounters(jobCgroup(cgroupFsRoot(), root, paths.id));
  const usage = state && (detail.usage || (exit?.signal === 9 && exit.oomKills === null)) ? cgroupUsage(counters()) : null;
  return {
    name: job === proc ? job : `${job}.${proc}`,
    job,
    process: proc,
    status,
    pid: status === "running" ? state!.pid : null,
    config,
    lastExit: exit ? lastExit(exit, usage?.oomKills ?? null) : null,
    memoryBytes: status === "running" ? (usage?.memoryBytes ?? null) : null,
    pids: status === "running" ? (usage?.pids ?? null) : null,
    cpuSeconds: status === "running" ? (usage?.cpuSeconds ?? null) : null,
    cpuThrottledSeconds: status === "running" ? (usage?.cpuThrottledSeconds ?? null) : null,
  };
}

/** The job's process names: from the parse a start kept, or a fresh one (which loads the YAML parser). */
async function processNames(root: ExternalPath, job: string): Promise<string[]> {
  const paths = jobPaths(root, job);
  const schema = { root, job };
  const cached = readCachedConfig(paths.configCache, configKey(paths.config, schema));
  if (cached) return cached.config.processes.map((p) => p.name);
  const { loadJobConfig } = await import("../config/load.ts");
  return loadJobConfig(paths.config, schema).config.processes.map((p) => p.name);
}

/** A directory's entries, sorted; none if it is missing, not a directory or unreadable. */
function entries(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch {
    return [];
  }
}

/** The records under a job's run directory, by process name in name order:
 * whatever is not a record bpm wrote (or vanishes meanwhile) is skipped. */
function recordsOf(root: ExternalPath, job: string): Map<string, ProcessRecord> {
  const found = new Map<string, ProcessRecord>();
  for (const f of entries(`${bpmDirs(root).runDir}/${job}`)) {
    const m = /^(.+)\.state$/.exec(f.name);
    if (!m || !f.isFile()) continue;
    try {
      const paths = jobPaths(root, job, m[1]);
      const record = readState(paths);
      if (record) found.set(record.entry?.process ?? paths.proc, record);
    } catch {
      // Not a name bpm gives: not a job's record.
    }
  }
  return found;
}

/**
 * Every job with a bpm.yml or a record, in name order: first the processes
 * bpm.yml names (config order), then those with a record it does not name
 * (renamed or removed since their start, or every recorded one when bpm.yml
 * cannot be read or is gone). The contract's stderr lines stay: a bpm.yml
 * that cannot be read says so, and a running process one that can be read
 * does not name is "extra" (its row is listed all the same).
 */
export async function listProcesses(detail: Detail, root: ExternalPath = boshRoot()): Promise<Listing> {
  const rows: ProcessRow[] = [];
  const warnings: string[] = [];
  const { jobsDir, runDir } = bpmDirs(root);
  const jobDirs = new Set(entries(jobsDir).map((e) => e.name));
  const jobs = new Set(jobDirs);
  for (const e of entries(runDir)) if (e.isDirectory()) jobs.add(e.name);
  for (const job of [...jobs].sort()) {
    let config: ConfigStatus = "missing";
    let names: string[] = [];
    try {
      if (existsSync(jobPaths(root, job).config)) {
        config = "unreadable";
        const reserved = reservedJobName(job);
        if (reserved) throw new Error(reserved);
        names = await processNames(root, job);
        for (const name of names) jobPaths(root, job, name);
        config = "not-named";
      } else if (reservedJobName(job)) continue;
    } catch (e) {
      // Not a job name bpm gives, with no bpm.yml: nothing of a job's.
      if (config === "missing" && !jobDirs.has(job)) continue;
      warnings.push(printable(`invalid config for ${job}: ${(e as Error).message}`));
      names = [];
    }
    const records = recordsOf(root, job);
    for (const name of names) rows.push(row(root, job, name, "named", records.get(name) ?? null, detail));
    for (const [name, record] of records) {
      if (names.includes(name)) continue;
      const r = row(root, job, name, config, record, detail);
      rows.push(r);
      if (config !== "unreadable" && r.status === "running") warnings.push(printable(`extra process running: process (${decodeContainerId(jobPaths(root, job, name).id)}) not defined`));
    }
  }
  return { rows, warnings };
}

/** Aligned like Go's tabwriter with padding 1: every column but the last padded to its widest cell plus one. */
export function formatTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 1))).join("")).join("\n") + "\n";
}

export function describeExit(e: ProcessRow["lastExit"]): string {
  if (!e) return "-";
  const how = e.oomKilled ? "oom-killed" : e.signal ? `signal ${e.signal}` : `exit ${e.code}`;
  return `${how} at ${e.at}`;
}

/** Whether bpm.yml still names a process (list --long). */
export function describeConfig(c: ConfigStatus): string {
  return { named: "ok", "not-named": "not in bpm.yml", unreadable: "bpm.yml unreadable", missing: "no bpm.yml" }[c];
}
