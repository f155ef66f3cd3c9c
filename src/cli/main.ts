// bpm's entry point: finds the command, checks root and flags, runs it, and
// turns every failure into "Error: <message>" and an exit status.
import type { CommandContext } from "citty";
import helperBinary from "bpm:helper-binary";
import reaperBinary from "bpm:reaper-binary";
import { setHelperBytes } from "../runtime/helper.ts";
import { UserError } from "../lifecycle/errors.ts";
import { CommandError, parseFlags, UsageError, type BpmCommand } from "./command.ts";
import { VERSION } from "./commands/version.ts";
import { writeOut } from "./output.ts";
import { commandUsage, help, mainUsage, meta } from "./usage.ts";

// Each command's module (and what it imports: the YAML parser, the planner...)
// is loaded only when that command runs: less for Node to evaluate at start-up.
const commands: Record<string, () => Promise<{ default: BpmCommand }>> = {
  start: () => import("./commands/start.ts"),
  stop: () => import("./commands/stop.ts"),
  run: () => import("./commands/run.ts"),
  list: () => import("./commands/list.ts"),
  pid: () => import("./commands/pid.ts"),
  logs: () => import("./commands/logs.ts"),
  shell: () => import("./commands/shell.ts"),
  trace: () => import("./commands/trace.ts"),
  validate: () => import("./commands/validate.ts"),
  version: () => import("./commands/version.ts"),
} as never;

const DESCRIPTION = "The BOSH process manager: runs each job's processes isolated, as vcap";

async function usage(): Promise<string> {
  const descriptions: Record<string, string> = {};
  for (const [name, load] of Object.entries(commands)) descriptions[name] = meta((await load()).default.def).description;
  return mainUsage(descriptions);
}

declare const BPM_HELPER_SHA256: string;
declare const BPM_REAPER_SHA256: string;
const ROOT_MESSAGE = "bpm must be run as root. Please run 'sudo -i' to become the root user.";

async function bpm(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--version") {
    writeOut(`${VERSION}\n`);
    return 0;
  }
  const known = (n: string | undefined) => n !== undefined && Object.hasOwn(commands, n);
  if (name === "--help" || name === "-h" || (name === "help" && !known(rest[0]))) {
    process.stdout.write(help(DESCRIPTION, await usage()) + "\n");
    return 0;
  }
  // No command: the root check first, then the usage and a failure, as the original.
  if (!name) {
    process.stderr.write(process.getuid?.() !== 0 ? `Error: ${ROOT_MESSAGE}\n` : `${await usage()}\n`);
    return 1;
  }
  const wanted = name === "help" ? rest[0]! : name;
  if (!known(wanted)) {
    process.stderr.write(`Error: unknown command "${name}" for "bpm"\n\n${await usage()}\n`);
    return 1;
  }
  const cmd = (await commands[wanted]!()).default;
  const flags = rest.includes("--") ? rest.slice(0, rest.indexOf("--")) : rest;
  if (name === "help" || flags.includes("--help") || flags.includes("-h")) {
    process.stdout.write(help(meta(cmd.def).description, commandUsage(cmd.def)) + "\n");
    return 0;
  }
  // Every command takes --version, before anything else (root, arguments) is looked at.
  if (flags.includes("--version")) {
    writeOut(`${VERSION}\n`);
    return 0;
  }
  try {
    const args = parseFlags(rest, (cmd.def.args ?? {}) as never);
    if (cmd.needsRoot && process.getuid?.() !== 0) throw new CommandError(ROOT_MESSAGE);
    // A command may return its exit status (shell, trace); otherwise 0.
    const result = await cmd.def.run!({ args, rawArgs: rest, cmd: cmd.def } as unknown as CommandContext);
    return typeof result === "number" ? result : 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message ? `Error: ${e.message}\n\n` : ""}${commandUsage(cmd.def)}\n`);
      return 1;
    }
    if (e instanceof CommandError) {
      process.stderr.write(`Error: ${e.message}\n`);
      return e.status;
    }
    if (e instanceof UserError) {
      process.stderr.write(`Error: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`Error: ${(e as Error).message ?? String(e)}\n`);
    if (process.env.BPM_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    return 1;
  }
}

setHelperBytes(helperBinary, typeof BPM_HELPER_SHA256 === "string" ? BPM_HELPER_SHA256 : undefined, {
  bytes: reaperBinary,
  sha256: typeof BPM_REAPER_SHA256 === "string" ? BPM_REAPER_SHA256 : undefined,
});
bpm(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
