// What every job command starts from: the paths, the user, the log and
// the helper for one JOB/PROC (the config is read by config.ts, for the
// commands that need it: the YAML parser is not loaded for the others).
import { bpmDirs, boshRoot, jobPaths, reservedJobName, type ExternalPath, type JobPaths } from "../bosh/paths.ts";
import { logBook, type LogNeed } from "../plan/book.ts";
import { encodeLogPlan } from "../plan/encode.ts";
import { BpmLog } from "../runtime/bpmlog.ts";
import { helperExecPath } from "../runtime/helper.ts";
import type { Identity } from "../plan/identity.ts";
import { lookupUser } from "../runtime/users.ts";
import { UserError } from "./errors.ts";

export { UserError };

export const JOB_USER = "vcap";

export interface JobContext {
  root: ExternalPath;
  paths: JobPaths;
  user: Identity;
  log: BpmLog;
  helper: () => string;
  /** What the command's bpm.<command>.complete event reports (pid, exit status...). */
  outcome: Record<string, unknown>;
}

/** bpm.log is required unless said otherwise: only stop goes ahead without it. */
export function jobContext(job: string, proc: string | undefined, bpmLog: LogNeed = "required"): JobContext {
  const reserved = reservedJobName(job);
  if (reserved) throw new UserError(reserved);
  const root = boshRoot();
  const paths = jobPaths(root, job, proc ?? job);
  const user = lookupUser(JOB_USER);
  const log = new BpmLog({ job, process: paths.proc }, bpmLog);
  return { root, paths, user, log, helper: () => helperExecPath(bpmDirs(root).helperDir), outcome: {} };
}

/** Runs a job command between bpm.<command>.starting and bpm.<command>.complete
 * in bpm.log, the events the original's log sessions wrote (complete even
 * when the command failed, after its error). start and stop hand their
 * events over in their plan; the others have them written at once (a bpm.log
 * bpm may not use fails them before anything happens, and operators see
 * "starting" while a long run or shell goes on), and what is left is
 * written at the end (start and stop: only when they failed before handing
 * over; once handed over, this process is the helper, or exits with it). */
export async function logged<T>(ctx: JobContext, command: string, body: () => Promise<T> | T): Promise<T> {
  ctx.log.info(`bpm.${command}.starting`);
  const early = command !== "start" && command !== "stop";
  if (early) writeLog(ctx, ctx.log.need);
  try {
    return await body();
  } finally {
    ctx.log.info(`bpm.${command}.complete`, ctx.outcome);
    // Once a run, shell or trace has done its work, a bpm.log the job spoiled meanwhile
    // does not change how it ended: it is said, and the job's status stands.
    writeLog(ctx, early ? "wanted" : ctx.log.need);
  }
}

/** Has the helper's log verb write the lines waiting, now: the helper opens
 * bpm.log (helper-c/bpmlog.c). Required, a bpm.log it may not use fails the
 * command with its reason; wanted, the helper says why on stderr. Either way
 * nothing more is tried. */
function writeLog(ctx: JobContext, need: LogNeed): void {
  const lines = ctx.log.take();
  if (lines.length === 0) return;
  // Loaded here: the commands that write nothing to bpm.log do not pay for node:child_process.
  const r = process.getBuiltinModule("node:child_process").spawnSync(ctx.helper(), ["log"], {
    argv0: "bpm-log",
    input: encodeLogPlan(logBook(ctx.paths, ctx.user), need, lines),
    stdio: ["pipe", "ignore", need === "required" ? "pipe" : "inherit"],
    encoding: "utf8",
  });
  if (r.status === 0) return;
  ctx.log.refuse();
  if (need !== "required") return;
  const why = /^error: (.*)/m.exec(r.stderr ?? "")?.[1];
  throw new UserError(why ?? `bpm.log not written: ${r.error?.message ?? `the helper ended with ${r.signal ?? `status ${r.status}`}`}`);
}
