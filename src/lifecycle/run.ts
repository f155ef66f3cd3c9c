// `bpm run`: the process in the foreground, in the same isolation as start,
// bpm's signals passed on, and its exit status returned. Its output goes to
// the logs and to the terminal as it comes, copied by the helper (which
// opens the logs, as it opens every file a job can write). Nothing is left:
// no pidfile, no state, no cgroup.
import type { ChildProcess } from "node:child_process";
import { constants as osConstants } from "node:os";
import { isatty } from "node:tty";
import type { ProcessConfig } from "../config/schema.ts";
import { encodePlan } from "../plan/encode.ts";
import { launch, type LaunchOptions } from "../runtime/launch.ts";
import { readExit } from "../runtime/state.ts";
import { ERROR_PREFIX } from "./errors.ts";
import { FORWARDED_SIGNALS } from "../plan/wire.ts";
import { UserError, type JobContext } from "./job.ts";
import { launchPlan, sayUnavailableCapabilities } from "./prepare.ts";

export interface RunResult {
  status: number;
  /** Why it failed, for "failed to run job-process: <why> (exit status N)". */
  why?: string;
}

/** The contract's message for a run that did not exit 0 (the command exits with the same status). */
export const runFailure = ({ status, why }: RunResult) => `${ERROR_PREFIX.run}${why} (exit status ${status})`;

export interface RunOptions {
  /** Startup tracing: called with the init's pid while the job waits before exec. */
  beforeExec?: LaunchOptions["beforeExec"];
  /** Whose events these are in bpm.log (`trace --startup` runs like run). */
  event?: "run" | "trace";
}

// What bpm passes on to the helper (which passes it to the init, then the job):
// the init's list (src/plan/wire.ts) but WINCH, as the job has no terminal of bpm's.
const FORWARDED = FORWARDED_SIGNALS.filter((s) => s !== "WINCH").map((s) => `SIG${s}` as const);

const signalName = (n: number) => Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0]?.replace(/^SIG/, "") ?? String(n);

export async function run(ctx: JobContext, proc: ProcessConfig, opts: RunOptions = {}): Promise<RunResult> {
  const { paths, log } = ctx;
  const event = opts.event ?? "run";
  const plan = launchPlan(ctx, proc, event, "foreground", opts.beforeExec !== undefined);
  sayUnavailableCapabilities(ctx, plan, event);
  // A terminal stays with bpm: the job gets /dev/null instead (TIOCSTI).
  const stdin = isatty(0) ? "ignore" : "inherit";
  let child: ChildProcess | undefined;
  // To the helper from the moment it exists: the job may be running before
  // the helper's report arrives. A signal before the launch ends the helper,
  // and with it the run.
  const forward = FORWARDED.map((sig) => [sig, () => child?.kill(sig)] as const);
  for (const [sig, fn] of forward) process.on(sig, fn);
  try {
    // bpm's stdout and stderr go to the helper, which writes the job's output there after its logs.
    const launched = await launch(ctx.helper(), encodePlan(plan, log.take()), {
      stdio: [stdin, "inherit", "inherit"],
      beforeExec: opts.beforeExec,
      onSpawn: (c) => (child = c),
    });
    if (launched.alreadyRunning) return { status: 0 };
    // Refused, or failed before the container existed: a message of its own, exit 1.
    if (launched.failure && launched.pid === 0) throw new UserError(plan.kind === "refusal" ? launched.failure : `${plan.job.errorPrefix}${launched.failure}`);
    const { status, oomKills } = await launched.exit;
    const exit = readExit(paths);
    // The cgroup's count, else (a systemd scope, gone with the init) what the init recorded.
    const why = status === 0 ? undefined : describe(launched.failure, exit, (oomKills ?? exit?.oomKills ?? 0) > 0, status);
    Object.assign(ctx.outcome, { exitStatus: status, ...(why ? { error: why } : {}) });
    return { status, why };
  } catch (e) {
    log.error(`bpm.${event}.failed`, { error: (e as Error).message });
    throw e;
  } finally {
    for (const [sig, fn] of forward) process.off(sig, fn);
  }
}

function describe(failure: string | undefined, exit: ReturnType<typeof readExit>, oomKilled: boolean, status: number): string {
  if (failure) return failure;
  if (exit?.signal) return oomKilled && exit.signal === 9 ? "killed by the kernel's OOM killer (memory limit)" : `killed by signal ${signalName(exit.signal)}`;
  if (exit?.code !== undefined && exit.code !== null) return `exited with code ${exit.code}`;
  return status > 128 ? `killed by signal ${signalName(status - 128)}` : `exited with code ${status}`;
}
