// `bpm run`: the process in the foreground, in the same isolation as start,
// its output appended to the logs and copied to the terminal as it comes,
// bpm's signals passed on, and its exit status returned. Nothing is left:
// no pidfile, no state, no cgroup.
import type { ChildProcess } from "node:child_process";
import { writeSync } from "node:fs";
import { constants as osConstants } from "node:os";
import type { Readable } from "node:stream";
import { isatty } from "node:tty";
import type { ProcessConfig } from "../config/schema.ts";
import { cgroupUsage, removeCgroup } from "../runtime/cgroups.ts";
import type { LaunchOptions } from "../runtime/launch.ts";
import { openLock } from "../runtime/lock.ts";
import { clearState, readExit } from "../runtime/state.ts";
import type { JobContext } from "./job.ts";
import { lockForLaunch, prepareLaunch, type Prepared } from "./prepare.ts";

export interface RunResult {
  status: number;
  /** Why it failed, for "failed to run job-process: <why> (exit status N)". */
  why?: string;
}

/** The contract's message for a run that did not exit 0 (the command exits with the same status). */
export const runFailure = ({ status, why }: RunResult) => `failed to run job-process: ${why} (exit status ${status})`;

export interface RunOptions {
  /** Startup tracing: called with the init's pid while the job waits before exec. */
  beforeExec?: LaunchOptions["beforeExec"];
  /** Whose events these are in bpm.log (`trace --startup` runs like run). */
  event?: "run" | "trace";
}

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"] as const;

/** Appends each chunk to the log and copies it to the terminal, in order. */
function tee(from: Readable, logFd: number, to: NodeJS.WriteStream): Promise<void> {
  let logOk = true;
  let toOk = true;
  to.on("error", () => (toOk = false)); // e.g. `bpm run ... | head`: the log still gets everything
  return new Promise((resolve) => {
    from.on("data", (chunk: Buffer) => {
      if (logOk) {
        try {
          for (let off = 0; off < chunk.length; ) off += writeSync(logFd, chunk, off);
        } catch {
          logOk = false;
        }
      }
      if (toOk && !to.write(chunk)) {
        from.pause();
        to.once("drain", () => from.resume());
      }
    });
    from.on("end", resolve);
    from.on("error", () => resolve());
  });
}

const signalName = (n: number) => Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0]?.replace(/^SIG/, "") ?? String(n);

export async function run(ctx: JobContext, proc: ProcessConfig, opts: RunOptions = {}): Promise<RunResult> {
  const { paths, log } = ctx;
  const lock = openLock(paths.lockFile);
  let copied: Promise<unknown> = Promise.resolve();
  try {
    // A terminal stays with bpm: the job gets /dev/null instead (TIOCSTI).
    const stdin = isatty(0) ? "ignore" : "inherit";
    const locked = await lockForLaunch(ctx, proc, lock, opts.event ?? "run", (logs) => ({
      stdio: [stdin, "pipe", "pipe"],
      beforeExec: opts.beforeExec,
      // Read from the first moment: Node discards what nobody reads once the helper exits.
      onSpawn: (child: ChildProcess) => {
        copied = Promise.all([tee(child.stdout!, logs.out, process.stdout), tee(child.stderr!, logs.err, process.stderr)]);
      },
    }));
    if (!locked) return { status: 0 };
    const { logs, launcher, host } = locked;
    let prep: Prepared | undefined;
    // To the helper from now on: the job may be running (and printing) before
    // the helper's report arrives. A signal before the launch ends the helper,
    // and with it the run.
    const forward = FORWARDED.map((sig) => [sig, () => launcher.child.kill(sig)] as const);
    for (const [sig, fn] of forward) process.on(sig, fn);
    try {
      prep = await prepareLaunch(ctx, proc, "foreground", host);
      prep.plan.pause = opts.beforeExec !== undefined;
      const launched = await launcher.launch(prep.plan);
      const status = await launched.exit;
      const oomKilled = (cgroupUsage(prep.cg).oomKills ?? 0) > 0;
      // Whatever the job left running (it had no pid namespace of its own, say) ends here.
      await removeCgroup(prep.cg);
      await copied;
      const why = status === 0 ? undefined : describe(launched.failure, readExit(paths), oomKilled, status);
      Object.assign(ctx.outcome, { exitStatus: status, ...(why ? { error: why } : {}) });
      return { status, why };
    } finally {
      for (const [sig, fn] of forward) process.off(sig, fn);
      launcher.cancel();
      if (prep) await removeCgroup(prep.cg).catch(() => {});
      clearState(paths, { exit: false });
      logs.close();
    }
  } catch (e) {
    log.error(`bpm.${opts.event ?? "run"}.failed`, { error: (e as Error).message });
    throw e;
  } finally {
    lock.release();
  }
}

function describe(failure: string | undefined, exit: ReturnType<typeof readExit>, oomKilled: boolean, status: number): string {
  if (failure) return failure;
  if (exit?.signal) return oomKilled && exit.signal === 9 ? "killed by the kernel's OOM killer (memory limit)" : `killed by signal ${signalName(exit.signal)}`;
  if (exit?.code !== undefined && exit.code !== null) return `exited with code ${exit.code}`;
  return status > 128 ? `killed by signal ${signalName(status - 128)}` : `exited with code ${status}`;
}
