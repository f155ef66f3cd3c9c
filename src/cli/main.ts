// bpm's entry point: finds the command, checks root and flags, runs it, and
// turns every failure into "Error: <message>" and an exit status.
import type { CommandContext, CommandDef } from "citty";
import helperBinary from "bpm:helper-binary";
import reaperBinary from "bpm:reaper-binary";
import { setHelperBytes } from "../runtime/helper.ts";
import { UserError } from "../lifecycle/errors.ts";
import { CommandError, parseFlags, UsageError, type BpmCommand } from "./command.ts";
import { VERSION } from "./commands/version.ts";
import { writeOut } from "./output.ts";

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

const main: CommandDef = {
  meta: { name: "bpm", version: VERSION, description: "The BOSH process manager: runs each job's processes isolated, as vcap" },
  subCommands: Object.fromEntries(Object.entries(commands).map(([k, load]) => [k, async () => (await load()).default.def])),
};

// citty colours its usage; keep plain text for pipes and logs.
async function renderUsage(cmd: CommandDef, parent?: CommandDef, to: NodeJS.WriteStream = process.stderr): Promise<string> {
  const { renderUsage: cittyUsage } = await import("citty");
  const text = await cittyUsage(cmd, parent);
  return to.isTTY && !process.env.NO_COLOR ? text : text.replace(/\x1b\[[0-9;]*m/g, "");
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
  if (name === "--help" || name === "-h" || name === "help") {
    process.stdout.write((await renderUsage(main, undefined, process.stdout)) + "\n");
    return 0;
  }
  // No command: the usage, on stderr, and a failure, as the original.
  if (!name) {
    process.stderr.write((await renderUsage(main)) + "\n");
    return 1;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`Error: unknown command "${name}" for "bpm"\n\n${await renderUsage(main)}\n`);
    return 1;
  }
  const cmd = (await load()).default;
  const flags = rest.includes("--") ? rest.slice(0, rest.indexOf("--")) : rest;
  if (flags.includes("--help") || flags.includes("-h")) {
    process.stdout.write((await renderUsage(cmd.def, main, process.stdout)) + "\n");
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
      process.stderr.write(`${e.message ? `Error: ${e.message}\n\n` : ""}${await renderUsage(cmd.def, main)}\n`);
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
