// The job's bookkeeping around its container, which the helper keeps once
// the CLI has handed over (helper-c/start.c, stop.c, launch.c): the lock,
// state and pidfile, bpm.log and its events, the process's logs. Pure: paths
// and the job's user come in.
import type { JobPaths } from "../bosh/paths.ts";
import type { Identity } from "./identity.ts";
import { ERROR_PREFIX } from "../lifecycle/errors.ts";

/** bpm.log, and whose the files a job can write are (the helper alone opens them: helper-c/bpmlog.c). */
export interface LogBook {
  bpmLog: string;
  /** The fixed data of every event, as JSON members. */
  logBase: string;
  /** Owner of the log directory, bpm.log and the process's logs. */
  logOwner: { uid: number; gid: number };
}

/** required: a bpm.log bpm may not use fails the command; wanted (stop): it is skipped, with a word on stderr. */
export type LogNeed = "required" | "wanted";

export interface JobBook extends LogBook {
  /** The job and process, as the record names them. */
  name: { job: string; process: string };
  /** flock()ed for the whole command: start, stop and run of one process are serialised. */
  lock: string;
  stateFile: string;
  pidfile: string;
  /** Event names start with this: bpm.start, bpm.stop, bpm.run, bpm.trace. */
  event: string;
  /** Before a failure's message, as the contract words it. */
  errorPrefix: string;
  /** The process's logs, opened by the helper (start, run, trace --startup); null for stop. */
  logs: { stdout: string; stderr: string } | null;
  /** Recorded in the state at start, used by stop. */
  shutdownSignal: "TERM" | "INT";
  /** The wait between the shutdown signal and QUIT (shutdown_timeout), recorded in the state at start for stop. */
  shutdownTimeoutMs: number;
  /** stop's schedule: shutdown signal, grace, QUIT, dump time, KILL, wait (the grace the state records wins; this one is for a state without). */
  stopTiming: { graceMs: number; quitMs: number; killMs: number } | null;
}

export const STOP_TIMING = { graceMs: 15_000, quitMs: 2_000, killMs: 5_000 };

/** bpm.log of one process, and its job's user. */
export function logBook(paths: JobPaths, user: Identity): LogBook {
  return {
    bpmLog: paths.bpmLog,
    logBase: JSON.stringify({ job: paths.job, process: paths.proc }).slice(1, -1),
    logOwner: { uid: user.uid, gid: user.gid },
  };
}

/** The bookkeeping for command (start, stop, run, trace) of one process. */
export function jobBook(paths: JobPaths, user: Identity, command: "start" | "stop" | "run" | "trace", opts: { shutdownSignal?: "TERM" | "INT"; shutdownTimeoutMs?: number } = {}): JobBook {
  const event = `bpm.${command}`;
  return {
    name: { job: paths.job, process: paths.proc },
    lock: paths.lockFile,
    stateFile: paths.stateFile,
    pidfile: paths.pidfile,
    ...logBook(paths, user),
    event,
    errorPrefix: ERROR_PREFIX[command],
    logs: command === "stop" ? null : { stdout: paths.stdoutLog, stderr: paths.stderrLog },
    shutdownSignal: opts.shutdownSignal ?? "TERM",
    shutdownTimeoutMs: opts.shutdownTimeoutMs ?? STOP_TIMING.graceMs,
    stopTiming: command === "stop" ? STOP_TIMING : null,
  };
}
