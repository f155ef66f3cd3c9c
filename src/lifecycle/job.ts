// What every job command starts from: the paths, the config, the log and
// the helper for one JOB/PROC.
import { bpmDirs, boshRoot, jobPaths, type ExternalPath, type JobPaths } from "../bosh/paths.ts";
import { ConfigError, loadJobConfig, type LoadedConfig } from "../config/load.ts";
import type { ProcessConfig } from "../config/schema.ts";
import { BpmLog } from "../runtime/bpmlog.ts";
import { helperExecPath } from "../runtime/helper.ts";
import { lookupUser, type Identity } from "../runtime/users.ts";

export const JOB_USER = "vcap";

import { UserError } from "./errors.ts";

export { UserError };

export interface JobContext {
  root: ExternalPath;
  paths: JobPaths;
  user: Identity;
  log: BpmLog;
  helper: () => string;
}

export function jobContext(job: string, proc: string | undefined): JobContext {
  const root = boshRoot();
  const paths = jobPaths(root, job, proc ?? job);
  const user = lookupUser(JOB_USER);
  const log = new BpmLog(paths.bpmLog, user, { job, process: paths.proc });
  return { root, paths, user, log, helper: () => helperExecPath(bpmDirs(root).helperDir) };
}

/** The process's config, with the contract's errors for a bad file or an unknown process. */
export function processConfig(ctx: JobContext, event: string): { proc: ProcessConfig; loaded: LoadedConfig } {
  let loaded: LoadedConfig;
  try {
    loaded = loadJobConfig(ctx.paths.config, { root: ctx.root, job: ctx.paths.job });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    ctx.log.error(`bpm.${event}.failed-to-parse-config`, { error: e.message });
    throw new UserError(`failed to parse job configuration: ${e.message}`);
  }
  for (const w of loaded.warnings) ctx.log.info(`bpm.${event}.unknown-config-key`, { warning: `${w.file}:${w.line}:${w.col}: ${w.field}` });
  const proc = loaded.config.processes.find((p) => p.name === ctx.paths.proc);
  if (!proc) throw new UserError(`process "${ctx.paths.proc}" not present in job configuration (${ctx.paths.config})`);
  return { proc, loaded };
}
