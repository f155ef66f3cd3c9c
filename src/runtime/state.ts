// What a started process leaves on the tmpfs under ROOT/sys/run/bpm/JOB, so
// that later commands (and a later boot, which wipes it) know the truth:
// the pidfile for monit, a state file, and the exit record the init writes.
import { readFileSync, rmSync } from "node:fs";
import type { JobPaths } from "../bosh/paths.ts";
import type { JobCgroup } from "./cgroups.ts";
import { writeFileAtomic } from "./files.ts";
import { isAlive } from "./procs.ts";

export interface ProcessState {
  version: 1;
  job: string;
  process: string;
  id: string;
  pid: number;
  /** Start time of pid from /proc, to tell it from a recycled pid. */
  startTime: number;
  startedAt: string;
  cgroup: JobCgroup;
  /** Recorded at start, so stop works even if the config has since broken. */
  shutdownSignal: "TERM" | "INT";
}

export interface ExitRecord {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: number | null;
  at: string;
}

export function readState(paths: JobPaths): ProcessState | null {
  try {
    const s = JSON.parse(readFileSync(paths.stateFile, "utf8")) as ProcessState;
    return s.version === 1 && Number.isInteger(s.pid) ? s : null;
  } catch {
    return null;
  }
}

export function writeState(paths: JobPaths, state: ProcessState): void {
  writeFileAtomic(paths.stateFile, JSON.stringify(state));
  // monit reads the pid with no trailing newline.
  writeFileAtomic(paths.pidfile, String(state.pid), 0o644);
}

export function readExit(paths: JobPaths): ExitRecord | null {
  try {
    const [code, signal, ms] = readFileSync(paths.exitFile, "utf8").trim().split(" ").map(Number);
    if (ms === undefined || Number.isNaN(ms)) return null;
    return { code: code! >= 0 ? code! : null, signal: signal ? signal : null, at: new Date(ms).toISOString() };
  } catch {
    return null;
  }
}

export type Status = "running" | "failed" | "stopped";

export function statusOf(state: ProcessState | null): Status {
  if (!state) return "stopped";
  return isAlive(state.pid, state.startTime) ? "running" : "failed";
}

/** Removes everything a start left, except the exit record unless asked. */
export function clearState(paths: JobPaths, opts: { exit: boolean }): void {
  rmSync(paths.pidfile, { force: true });
  rmSync(paths.stateFile, { force: true });
  if (opts.exit) rmSync(paths.exitFile, { force: true });
}
