// The process's configuration, for the commands that launch it or enter it
// (start, run, shell, trace): the contract's errors for a bad file or an
// unknown process, and unknown keys noted in bpm.log.
import { ConfigError, loadJobConfig, type LoadedConfig } from "../config/load.ts";
import type { ProcessConfig } from "../config/schema.ts";
import { UserError, type JobContext } from "./job.ts";

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
