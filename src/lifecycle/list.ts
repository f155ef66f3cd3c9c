// `bpm list`: every process of every job with a bpm.yml, with its status
// computed from the state file and the live process table.
import { readdirSync, existsSync } from "node:fs";
import { boshRoot, bpmDirs, decodeContainerId, jobPaths, type ExternalPath } from "../bosh/paths.ts";
import { loadJobConfig } from "../config/load.ts";
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
}

export interface Listing {
  rows: ProcessRow[];
  warnings: string[];
}

function row(root: ExternalPath, job: string, proc: string): ProcessRow {
  const paths = jobPaths(root, job, proc);
  const state = readState(paths);
  const status = statusOf(state);
  const usage = state ? cgroupUsage(jobCgroup(cgroupFsRoot(), root, paths.id)) : null;
  const exit = readExit(paths);
  return {
    name: job === proc ? job : `${job}.${proc}`,
    job,
    process: proc,
    status,
    pid: status === "running" ? state!.pid : null,
    lastExit: exit ? { ...exit, oomKilled: (usage?.oomKills ?? 0) > 0 && exit.signal === 9 } : null,
    memoryBytes: status === "running" ? (usage?.memoryBytes ?? null) : null,
    pids: status === "running" ? (usage?.pids ?? null) : null,
  };
}

export function listProcesses(root: ExternalPath = boshRoot()): Listing {
  const rows: ProcessRow[] = [];
  const warnings: string[] = [];
  const jobsDir = bpmDirs(root).jobsDir;
  const jobs = existsSync(jobsDir) ? readdirSync(jobsDir).sort() : [];
  const known = new Set<string>();
  for (const job of jobs) {
    const config = jobPaths(root, job).config;
    if (!existsSync(config)) continue;
    try {
      const { config: c } = loadJobConfig(config, { root, job });
      for (const p of c.processes) {
        rows.push(row(root, job, p.name));
        known.add(jobPaths(root, job, p.name).id);
      }
    } catch (e) {
      warnings.push(`invalid config for ${job}: ${(e as Error).message}`);
      known.add(`job:${job}`);
    }
  }
  // Running processes that no config mentions any more.
  const runDir = bpmDirs(root).runDir;
  for (const job of existsSync(runDir) ? readdirSync(runDir).sort() : []) {
    if (known.has(`job:${job}`)) continue;
    for (const f of readdirSync(`${runDir}/${job}`)) {
      const m = /^(.*)\.state$/.exec(f);
      if (!m) continue;
      const paths = jobPaths(root, job, m[1]);
      if (known.has(paths.id)) continue;
      const state = readState(paths);
      if (statusOf(state) === "running") warnings.push(`extra process running: process (${decodeContainerId(paths.id)}) not defined`);
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
