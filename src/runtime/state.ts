// What a started process leaves on the tmpfs under ROOT/sys/run/bpm/JOB, so
// that later commands (and a later boot, which wipes it) know the truth:
// the pidfile for monit, a state file, and the exit record the init writes.
// The helper writes the state (helper-c/state.c) as "key value" lines, the
// format both sides read.
import { readFileSync } from "node:fs";
import type { JobPaths } from "../bosh/paths.ts";
import { isAlive } from "./procs.ts";

export interface ProcessState {
  pid: number;
  /** Start time of pid from /proc, to tell it from a recycled pid. */
  startTime: number;
  startedAt: string;
  /** Recorded at start, so stop works even if the config has since broken. */
  shutdownSignal: "TERM" | "INT";
}

export interface ExitRecord {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: number | null;
  at: string;
}

const STATE_VERSION = "bpm-state 2";

export function readState(paths: JobPaths): ProcessState | null {
  let text: string;
  try {
    text = readFileSync(paths.stateFile, "utf8");
  } catch {
    return null;
  }
  const lines = text.split("\n");
  if (lines[0] !== STATE_VERSION) return null;
  const kv = new Map(lines.slice(1).filter(Boolean).map((l) => [l.slice(0, l.indexOf(" ")), l.slice(l.indexOf(" ") + 1)] as const));
  const pid = Number(kv.get("pid"));
  const startTime = Number(kv.get("start-time"));
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(startTime)) return null;
  const at = Number(kv.get("started-at"));
  return {
    pid,
    startTime,
    startedAt: new Date(Number.isFinite(at) ? at : 0).toISOString(),
    shutdownSignal: kv.get("shutdown-signal") === "INT" ? "INT" : "TERM",
  };
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
