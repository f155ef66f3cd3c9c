// What every job command starts from: the paths, the user, the log and
// the helper for one JOB/PROC (the config is read by config.ts, for the
// commands that need it: the YAML parser is not loaded for the others).
import { bpmDirs, boshRoot, jobPaths, reservedJobName, type ExternalPath, type JobPaths } from "../bosh/paths.ts";
import { BpmLog, type LogNeed } from "../runtime/bpmlog.ts";
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
  const log = new BpmLog(paths.bpmLog, user, { job, process: paths.proc }, bpmLog);
  return { root, paths, user, log, helper: () => helperExecPath(bpmDirs(root).helperDir), outcome: {} };
}

/** Runs a job command between bpm.<command>.starting and bpm.<command>.complete
 * in bpm.log, the events the original's log sessions wrote (complete even
 * when the command failed, after its error). start and stop hand their
 * events over in their plan; the others have them written at once (a bpm.log
 * bpm may not use fails them before anything happens, and operators see
 * "starting" while a long run or shell goes on), and every command has what
 * is left written at its end. */
export async function logged<T>(ctx: JobContext, command: string, body: () => Promise<T> | T): Promise<T> {
  ctx.log.info(`bpm.${command}.starting`);
  if (command !== "start" && command !== "stop") ctx.log.flush();
  try {
    return await body();
  } finally {
    ctx.log.info(`bpm.${command}.complete`, ctx.outcome);
    ctx.log.flush();
  }
}
