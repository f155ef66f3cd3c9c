// `bpm list`: every process of every job with a bpm.yml, with its status
// computed from the state file and the live process table. It never fails
// on what sits beside a job's state (a stray file, a start or stop under
// way): whatever is not a job's state, or vanishes while read, is skipped.
import { readdirSync, existsSync, type Dirent } from "node:fs";
import { boshRoot, bpmDirs, decodeContainerId, jobPaths, reservedJobName, type ExternalPath } from "../bosh/paths.ts";
import { configKey, readCachedConfig } from "../config/cache.ts";
import { printable } from "../config/problems.ts";
import { cgroupFsRoot, cgroupUsage, jobCgroup } from "../runtime/cgroups.ts";
import { readExit, readState, statusOf, type ExitRecord, type Status } from "../runtime/state.ts";

export interface ProcessRow {
  name: string;
  job: string;
  process: string;
  status: Status;
  pid: number | null;
  lastExit: (ExitRecord & { oomKilled: boolean }) | null;
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

function row(root: ExternalPath, job: string, proc: string, detail: Detail): ProcessRow {
  const paths = jobPaths(root, job, proc);
  const state = readState(paths);
  const status = statusOf(state);
  const exit = detail.exit ? readExit(paths) : null;
  // The cgroup's counters: for --json, or to tell an OOM kill from another SIGKILL.
  const usage = state && (detail.usage || exit?.signal === 9) ? cgroupUsage(jobCgroup(cgroupFsRoot(), root, paths.id)) : null;
  return {
    name: job === proc ? job : `${job}.${proc}`,
    job,
    process: proc,
    status,
    pid: status === "running" ? state!.pid : null,
    lastExit: exit ? { ...exit, oomKilled: (usage?.oomKills ?? 0) > 0 && exit.signal === 9 } : null,
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

export async function listProcesses(detail: Detail, root: ExternalPath = boshRoot()): Promise<Listing> {
  const rows: ProcessRow[] = [];
  const warnings: string[] = [];
  const known = new Set<string>();
  for (const { name: job } of entries(bpmDirs(root).jobsDir)) {
    try {
      if (!existsSync(jobPaths(root, job).config)) continue;
      const reserved = reservedJobName(job);
      if (reserved) throw new Error(reserved);
      for (const name of await processNames(root, job)) {
        rows.push(row(root, job, name, detail));
        known.add(jobPaths(root, job, name).id);
      }
    } catch (e) {
      warnings.push(printable(`invalid config for ${job}: ${(e as Error).message}`));
      known.add(`job:${job}`);
    }
  }
  // Running processes that no config mentions any more: only job directories
  // holding state files count.
  const runDir = bpmDirs(root).runDir;
  for (const dir of entries(runDir)) {
    if (!dir.isDirectory() || known.has(`job:${dir.name}`)) continue;
    for (const f of entries(`${runDir}/${dir.name}`)) {
      const m = /^(.+)\.state$/.exec(f.name);
      if (!m || !f.isFile()) continue;
      try {
        const paths = jobPaths(root, dir.name, m[1]);
        if (known.has(paths.id)) continue;
        if (statusOf(readState(paths)) === "running") warnings.push(printable(`extra process running: process (${decodeContainerId(paths.id)}) not defined`));
      } catch {
        // Not a name bpm gives (or gone meanwhile): not a job's state.
      }
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
