// What every command shares: its citty definition plus whether it needs root,
// the job/process arguments, the contract's errors, and strict flag checking
// (citty ignores unknown flags and keeps only the last of a repeated one).
import { defineCommand, type ArgsDef, type CommandDef } from "citty";

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
  return { def: defineCommand(def), needsRoot: opts.needsRoot ?? true };
}

export const jobArgs = {
  job: { type: "positional", required: false, description: "the job's name (a directory under ROOT/jobs)" },
  process: { type: "string", alias: "p", description: "the process within the job (defaults to the job's name)" },
} as const;

/** The job named on the command line, or the contract's usage error. */
export function requireJob(args: { job?: unknown }): string {
  const job = args.job as string | undefined;
  if (!job) throw new UsageError("must specify a job");
  return job;
}

/** Rejects flags the command does not define, naming the first one. */
export function checkFlags(rawArgs: string[], args: ArgsDef): void {
  const known = new Set<string>(["help", "h", "version"]);
  for (const [name, def] of Object.entries(args)) {
    if (def.type === "positional") continue;
    known.add(name);
    const alias = (def as { alias?: string | string[] }).alias;
    for (const a of Array.isArray(alias) ? alias : alias ? [alias] : []) known.add(a);
    if (def.type === "boolean") known.add(`no-${name}`);
  }
  for (const raw of rawArgs) {
    if (raw === "--") break;
    if (!raw.startsWith("-") || raw === "-") continue;
    const names = raw.startsWith("--") ? [raw.slice(2).split("=")[0]!] : [...raw.slice(1).split("=")[0]!];
    for (const n of names) if (!known.has(n)) throw new UsageError(`unknown flag: ${raw.startsWith("--") ? "--" : "-"}${n}`);
  }
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

