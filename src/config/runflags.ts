// `bpm run`'s extra volumes (-v PATH[:OPTS]) and environment (-e KEY=VALUE),
// held to the same rules as the config file.
import * as v from "valibot";
import { volumeSchema, type ProcessConfig, type SchemaContext, type Volume } from "./schema.ts";

const VOLUME_OPTIONS = ["writable", "mount_only", "allow_executions", "shared"] as const;

export class RunFlagError extends Error {}

/** `PATH[:writable,mount_only,allow_executions,shared]` as a volume of bpm.yml. */
export function parseVolumeFlag(flag: string, ctx: SchemaContext): Volume {
  const colon = flag.indexOf(":");
  const path = colon < 0 ? flag : flag.slice(0, colon);
  const volume: Record<string, unknown> = { path };
  if (colon >= 0) {
    for (const opt of flag.slice(colon + 1).split(",")) {
      if (!(VOLUME_OPTIONS as readonly string[]).includes(opt)) {
        throw new RunFlagError(`invalid volume "${flag}": unknown option "${opt}" (options: ${VOLUME_OPTIONS.join(", ")})`);
      }
      volume[opt] = true;
    }
  }
  const r = v.safeParse(volumeSchema(ctx), volume);
  if (!r.success) throw new RunFlagError(`invalid volume "${flag}": ${r.issues[0].message}`);
  return r.output;
}

/** `KEY=VALUE`; the value may hold "=" and may be empty, the key may not. */
export function parseEnvFlag(flag: string): [string, string] {
  const eq = flag.indexOf("=");
  if (eq < 0) throw new RunFlagError(`invalid environment variable "${flag}": expected KEY=VALUE`);
  const key = flag.slice(0, eq);
  if (!key) throw new RunFlagError(`invalid environment variable "${flag}": the name is empty`);
  if (flag.includes("\0")) throw new RunFlagError(`invalid environment variable "${key}": contains a NUL byte`);
  return [key, flag.slice(eq + 1)];
}

/** The process as configured plus the command line's volumes and environment (the last -e of a name wins). */
export function withRunFlags(proc: ProcessConfig, volumes: string[], env: string[], ctx: SchemaContext): ProcessConfig {
  const extraVolumes = volumes.map((f) => parseVolumeFlag(f, ctx));
  const extraEnv = Object.fromEntries(env.map(parseEnvFlag));
  return { ...proc, additional_volumes: [...proc.additional_volumes, ...extraVolumes], env: { ...proc.env, ...extraEnv } };
}
