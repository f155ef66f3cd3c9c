// What every job command starts from: the paths, the user, the log and
// the helper for one JOB/PROC (the config is read by config.ts, for the
// commands that need it: the YAML parser is not loaded for the others).
import { bpmDirs, boshRoot, jobPaths, type ExternalPath, type JobPaths } from "../bosh/paths.ts";
import { BpmLog } from "../runtime/bpmlog.ts";
import { ensureDir } from "../runtime/files.ts";
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

export function jobContext(job: string, proc: string | undefined): JobContext {
  const root = boshRoot();
  const paths = jobPaths(root, job, proc ?? job);
  const user = lookupUser(JOB_USER);
  const log = new BpmLog(paths.bpmLog, user, { job, process: paths.proc });
  return { root, paths, user, log, helper: () => helperExecPath(bpmDirs(root).helperDir), outcome: {} };
}

/** Where plans handed to the helper are written: bpm's run directory (root's; tmpfs on BOSH VMs). */
export function planDir(ctx: JobContext): string {
  const dir = bpmDirs(ctx.root).runDir;
  ensureDir(dir, 0o755);
  return dir;
}

/** Runs a job command between bpm.<command>.starting and bpm.<command>.complete
 * in bpm.log, the events the original's log sessions wrote (complete even
 * when the command failed, after its error). */
export async function logged<T>(ctx: JobContext, command: string, body: () => Promise<T> | T): Promise<T> {
  ctx.log.info(`bpm.${command}.starting`);
  try {
    return await body();
  } finally {
    ctx.log.info(`bpm.${command}.complete`, ctx.outcome);
  }
}
