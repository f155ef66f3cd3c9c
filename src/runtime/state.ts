// What a started process leaves on the tmpfs under ROOT/sys/run/bpm/JOB, so
// that later commands (and a later boot, which wipes it) know the truth:
// the pidfile for monit, the record of what start made (its format:
// src/plan/record.ts; written by helper-c/state.c), and the exit record the
// init writes.
import { closeSync, constants as C, fstatSync, openSync, readFileSync } from "node:fs";
import type { JobPaths } from "../bosh/paths.ts";
import { parseRecord, type ProcessRecord } from "../plan/record.ts";
import { MAX_RECORD_BYTES } from "../plan/wire.ts";
import { startTime } from "./procs.ts";

export type { ProcessRecord };
/** The name the commands used before the record held more than the pid. */
export type ProcessState = ProcessRecord;

export interface ExitRecord {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: number | null;
  at: string;
  /** The job's OOM kills when it ended (read by its init while its cgroup still existed); null: not recorded (an older bpm). */
  oomKills: number | null;
}

/** The record at a state file, or null if there is none we can read. */
export function readRecordAt(file: string): ProcessRecord | null {
  let fd: number;
  try {
    fd = openSync(file, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    // Read as helper-c/state.c reads it: a regular file within the bound, or none.
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_RECORD_BYTES) return null;
    return parseRecord(readFileSync(fd, "utf8"));
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

export const readState = (paths: JobPaths) => readRecordAt(paths.stateFile);

export function readExit(paths: JobPaths): ExitRecord | null {
  try {
    const [code, signal, ms, oom] = readFileSync(paths.exitFile, "utf8").trim().split(" ").map(Number);
    if (ms === undefined || Number.isNaN(ms)) return null;
    const oomKills = oom !== undefined && Number.isInteger(oom) && oom >= 0 ? oom : null;
    return { code: code! >= 0 ? code! : null, signal: signal ? signal : null, at: new Date(ms).toISOString(), oomKills };
  } catch {
    return null;
  }
}

export type Status = "running" | "failed" | "stopped";

let thisBoot: string | undefined;
/** This boot's id (the kernel's random boot_id). */
export function bootId(): string {
  thisBoot ??= readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  return thisBoot;
}

/** The liveness rule (helper-c/state.c's state_running is the same): the
 * recorded pid lives, with the recorded start time, in the recorded boot. */
export function isLive(r: ProcessRecord): boolean {
  if (r.bootId !== null && r.bootId !== bootId()) return false;
  return r.pid > 0 && startTime(r.pid) === r.startTime;
}

export function statusOf(state: ProcessRecord | null): Status {
  if (!state) return "stopped";
  return isLive(state) ? "running" : "failed";
}
