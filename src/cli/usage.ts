// The usage text, shaped like the original's: a `Usage:` line first (scripts
// and the original's own tests look for it), then the commands or the
// arguments, then the flags. Plain text: it goes to pipes and logs as often
// as to a terminal.
import type { ArgsDef, CommandDef } from "citty";

interface ArgShape {
  type?: string;
  alias?: string | string[];
  description?: string;
  valueHint?: string;
  required?: boolean;
}

/** Rows of two columns, the first padded so that the second lines up. */
function table(rows: [string, string][]): string[] {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}   ${right}`.trimEnd());
}

const HELP_ROW: [string, string] = ["-h, --help", "show this help"];

/** bpm's own usage: the commands, one line each. */
export function mainUsage(commands: Record<string, string>): string {
  return [
    "Usage:",
    "  bpm COMMAND [JOB] [flags]",
    "",
    "Commands:",
    ...table(Object.entries(commands)),
    "",
    "Flags:",
    ...table([HELP_ROW, ["    --version", "print bpm's version"]]),
    "",
    'Run "bpm COMMAND --help" for what a command takes.',
  ].join("\n");
}

/** A command's name and description (bpm's commands give both, as plain values). */
export const meta = (cmd: CommandDef) => cmd.meta as { name: string; description: string };

/** One command's usage: its arguments and flags. */
export function commandUsage(cmd: CommandDef): string {
  const args = Object.entries((cmd.args ?? {}) as ArgsDef) as [string, ArgShape][];
  const positionals = args.filter(([, a]) => a.type === "positional");
  const flags = args.filter(([, a]) => a.type !== "positional");
  // A positional with a hint is shown as the hint says; else optional.
  const label = (name: string, a: ArgShape) => a.valueHint ?? `[${name.toUpperCase()}]`;
  const line = ["bpm", meta(cmd).name, ...positionals.map(([n, a]) => label(n, a)), "[flags]"].join(" ");
  const out = ["Usage:", `  ${line}`];
  if (positionals.length > 0) {
    out.push("", "Arguments:", ...table(positionals.map(([n, a]) => [label(n, a), a.description ?? ""])));
  }
  const flagRows = flags.map(([n, a]): [string, string] => {
    const aliases = Array.isArray(a.alias) ? a.alias : a.alias ? [a.alias] : [];
    const short = aliases.length > 0 ? `-${aliases[0]}, ` : "    ";
    const value = a.type === "boolean" ? "" : ` ${a.valueHint ?? n.toUpperCase()}`;
    return [`${short}--${n}${value}`, a.description ?? ""];
  });
  out.push("", "Flags:", ...table([...flagRows, HELP_ROW]));
  return out.join("\n");
}

/** `--help`: what the command does, then its usage. */
export function help(description: string, usage: string): string {
  return `${description}\n\n${usage}`;
}
