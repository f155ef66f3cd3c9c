// Loads a job's bpm.yml: read the YAML (reader.ts), check it against the
// schema, which also normalizes it (schema.ts), and gather advice on valid
// settings that need something outside the file (advice.ts).
import { readFileSync, statSync } from "node:fs";
import * as v from "valibot";
import { monitAdvice } from "./advice.ts";
import { ConfigError, fieldName, shown, type Key, type Problem } from "./problems.ts";
import { readYaml } from "./reader.ts";
import { CONFIG_SHAPE, configSchema, type JobConfig, type SchemaContext } from "./schema.ts";

export { ConfigError, formatProblem, type Problem } from "./problems.ts";
export { MONIT_PROGRAM_TIMEOUT_MS } from "./advice.ts";

export interface LoadedConfig {
  config: JobConfig;
  /** Unknown keys: ignored like the original did, but worth telling the author. */
  warnings: Problem[];
  /** Valid settings that need something outside bpm.yml (`bpm validate` prints them). */
  advice: Problem[];
}

/** Generous for ERB-rendered files full of certificates, small enough to parse at once. */
export const MAX_CONFIG_BYTES = 2 << 20;

export function parseJobConfig(source: string, file: string, ctx: SchemaContext): LoadedConfig {
  const yaml = readYaml(source, file, CONFIG_SHAPE);
  const problem = (path: readonly Key[], message: string): Problem => ({ file, ...yaml.at(path), field: fieldName(path), message });
  const { value } = yaml;
  // An empty file (or one of only comments or `---`) is a job with no
  // processes, as the original read it: a template that rendered nothing.
  if (value === null) return { config: { processes: [] }, warnings: yaml.warnings, advice: [] };
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError([problem([], `expected a map with a "processes" list, got ${Array.isArray(value) ? "a list" : shown(value)}`)]);
  }
  const result = v.safeParse(configSchema(ctx), value, { abortPipeEarly: true });
  if (!result.success) {
    const problems = result.issues.map((issue) => problem((issue.path ?? []).map((p) => p.key as Key), issue.message));
    problems.sort((a, b) => a.line - b.line || a.col - b.col);
    throw new ConfigError(problems);
  }
  return { config: result.output, warnings: yaml.warnings, advice: monitAdvice(result.output, (path) => problem(path, "")) };
}

export function loadJobConfig(file: string, ctx: SchemaContext): LoadedConfig {
  let source: string;
  try {
    const size = statSync(file).size;
    if (size > MAX_CONFIG_BYTES) {
      throw new ConfigError([{ file, line: 0, col: 0, field: "", message: `file is too large (${size} bytes; at most ${MAX_CONFIG_BYTES})` }]);
    }
    source = readFileSync(file, "utf8");
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new ConfigError([{ file, line: 0, col: 0, field: "", message: err.code === "ENOENT" ? "file not found" : err.message }]);
  }
  return parseJobConfig(source, file, ctx);
}
