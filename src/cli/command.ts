// What every command shares: its citty definition plus whether it needs root,
// the job/process arguments, the contract's errors, and strict flag checking
// (citty ignores unknown flags and keeps only the last of a repeated one).
import type { ArgsDef, CommandDef } from "citty";

/** Wrong use of a command: its usage on stderr (after "Error: <message>" unless the message is empty), exit status 1. */
export class UsageError extends Error {}
/** An error whose message is printed as "Error: <message>"; exit status 1 unless given. */
export class CommandError extends Error {
  readonly status: number;
  constructor(message: string, status = 1) {
    super(message);
    this.status = status;
  }
}

export interface BpmCommand<T extends ArgsDef = ArgsDef> {
  def: CommandDef<T>;
  /** Most commands need root; `version` and `validate` do not. */
  needsRoot: boolean;
}

export function command<const T extends ArgsDef>(
  def: CommandDef<T> & { meta: { name: string; description: string } },
  opts: { needsRoot?: boolean } = {},
): BpmCommand<T> {
  // A citty definition as citty's defineCommand would return it (it returns it as is): citty
  // itself is loaded only to render a usage.
  return { def: def as CommandDef<T>, needsRoot: opts.needsRoot ?? true };
}

export const jobArgs = {
  job: { type: "positional", required: false, valueHint: "JOB", description: "the job's name (a directory under ROOT/jobs)" },
  process: { type: "string", alias: "p", valueHint: "PROC", description: "the process within the job (defaults to the job's name)" },
} as const;

/** The job named on the command line, or the contract's usage error. */
export function requireJob(args: { job?: unknown }): string {
  const job = args.job as string | undefined;
  if (!job) throw new UsageError("must specify a job");
  return job;
}

/** The parsed command line: positionals in `_` (the first also under the
 * positional's name), each flag under its name. */
export type ParsedArgs = Record<string, string | boolean | string[] | undefined> & { _: string[] };

/**
 * Parses the command line against the command's flags: `--name value`,
 * `--name=value`, `-n value`, `-nvalue`, `--flag`, `--no-flag`, `-ab`
 * (booleans), `--` ends the flags. An unknown flag is refused by name, as is
 * a flag without its value. (citty's own parser is left aside: its name
 * conversions cost every command a few milliseconds.)
 */
export function parseFlags(rawArgs: string[], defs: ArgsDef): ParsedArgs {
  const byName = new Map<string, { name: string; type: string }>();
  const positionals: string[] = [];
  for (const [name, def] of Object.entries(defs)) {
    if (def.type === "positional") {
      positionals.push(name);
      continue;
    }
    byName.set(name, { name, type: def.type ?? "string" });
    const alias = (def as { alias?: string | string[] }).alias;
    for (const a of Array.isArray(alias) ? alias : alias ? [alias] : []) byName.set(a, { name, type: def.type ?? "string" });
  }
  for (const n of ["help", "h", "version"]) byName.set(n, { name: n, type: "boolean" });
  const out: ParsedArgs = { _: [] };
  for (let i = 0; i < rawArgs.length; i++) {
    const raw = rawArgs[i]!;
    if (raw === "--") {
      out._.push(...rawArgs.slice(i + 1));
      break;
    }
    if (!raw.startsWith("-") || raw === "-") {
      out._.push(raw);
      continue;
    }
    const long = raw.startsWith("--");
    const eq = raw.indexOf("=");
    const body = raw.slice(long ? 2 : 1, eq < 0 ? undefined : eq);
    const attached = eq < 0 ? undefined : raw.slice(eq + 1);
    // -ab: booleans together; -n5: a short flag with its value attached.
    const names = long ? [body] : [...body];
    for (let k = 0; k < names.length; k++) {
      let n = names[k]!;
      let negated = false;
      if (long && !byName.has(n) && n.startsWith("no-") && byName.get(n.slice(3))?.type === "boolean") {
        n = n.slice(3);
        negated = true;
      }
      const flag = byName.get(n);
      if (!flag) throw new UsageError(`unknown flag: ${long ? "--" : "-"}${n}`);
      if (flag.type === "boolean") {
        out[flag.name] = negated ? false : attached === undefined ? true : attached !== "false";
        continue;
      }
      const rest = !long && k < names.length - 1 ? names.slice(k + 1).join("") : undefined;
      const value = attached ?? rest ?? rawArgs[++i];
      if (value === undefined) throw new UsageError(`flag ${raw} needs a value`);
      out[flag.name] = value; // repeated: the last wins (run's -v and -e read them all: repeatedFlag)
      break;
    }
  }
  positionals.forEach((name, n) => (out[name] = out._[n]));
  return out;
}

/** Every value of a repeatable flag (`-v a -v b`, `--volume=a`), in order. */
export function repeatedFlag(rawArgs: string[], long: string, short: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === "--") break;
    if (a === `--${long}` || a === `-${short}`) {
      const v = rawArgs[i + 1];
      if (v === undefined) throw new UsageError(`flag ${a} needs a value`);
      values.push(v);
      i++;
    } else if (a.startsWith(`--${long}=`)) values.push(a.slice(long.length + 3));
    else if (a.startsWith(`-${short}`) && a.length > 2 && !a.startsWith("--")) values.push(a.slice(2).replace(/^=/, ""));
  }
  return values;
}

