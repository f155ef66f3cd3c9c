// The process's configuration, for the commands that launch it or enter it
// (start, run, shell, trace): the contract's errors for a bad file or an
// unknown process, and unknown keys noted in bpm.log. A parse is kept for
// the next command while bpm.yml stays the same file (src/config/cache.ts);
// only a fresh parse loads the YAML parser and the schema.
import { configKey, readCachedConfig, writeCachedConfig } from "../config/cache.ts";
import type { LoadedConfig } from "../config/load.ts";
import type { ProcessConfig } from "../config/schema.ts";
import { ensureDir } from "../runtime/files.ts";
import { failure } from "./errors.ts";
import { UserError, type JobContext } from "./job.ts";

export async function processConfig(ctx: JobContext, event: string): Promise<{ proc: ProcessConfig; loaded: LoadedConfig }> {
  const { paths } = ctx;
  const schema = { root: ctx.root, job: paths.job };
  const key = configKey(paths.config, schema);
  let loaded = readCachedConfig(paths.configCache, key);
  if (!loaded) {
    const { ConfigError, loadJobConfig } = await import("../config/load.ts");
    try {
      loaded = loadJobConfig(paths.config, schema);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      ctx.log.error(`bpm.${event}.failed-to-parse-config`, { error: e.message });
      throw failure("config", e.message);
    }
    try {
      ensureDir(paths.runDir, 0o700);
      writeCachedConfig(paths.configCache, key, paths.config, schema, loaded);
    } catch {
      // Best effort: a full tmpfs costs the next command a parse, nothing more.
    }
  }
  for (const w of loaded.warnings) ctx.log.info(`bpm.${event}.unknown-config-key`, { warning: `${w.file}:${w.line}:${w.col}: ${w.field}` });
  const proc = loaded.config.processes.find((p) => p.name === paths.proc);
  if (!proc) throw new UserError(`process "${paths.proc}" not present in job configuration (${paths.config})`);
  return { proc, loaded };
}
