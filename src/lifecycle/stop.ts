// `bpm stop`: the shutdown signal, 15 s, QUIT, 2 s, then kill everything
// left in the container; returns the moment the process is gone.
import { spawn } from "node:child_process";
import { constants as osConstants } from "node:os";
import { cgroupFsRoot, jobCgroup, removeCgroup } from "../runtime/cgroups.ts";
import { openLock, withLock, type Lock } from "../runtime/lock.ts";
import { clearState, readState, statusOf } from "../runtime/state.ts";
import type { JobContext } from "./job.ts";

export const STOP_TIMING = { graceMs: 15_000, quitMs: 2_000, killMs: 5_000 };

export async function stop(ctx: JobContext): Promise<void> {
  const { paths, log } = ctx;
  const lock = openLock(paths.lockFile);
  const stopper = spawnStopper(ctx.helper(), lock);
  try {
    await stopper.locked;
    const state = readState(paths);
    if (!state || statusOf(state) !== "running") {
      await stopper.finish(null);
      log.info("bpm.stop.job-already-stopped");
      // Whatever a dead run or a killed bpm left: processes, cgroup, pidfile.
      await removeCgroup(state?.cgroup ?? jobCgroup(cgroupFsRoot(), ctx.root, paths.id));
      clearState(paths, { exit: false });
      return;
    }
    log.info("bpm.stop.stopping", { pid: state.pid, signal: state.shutdownSignal });
    const signal = osConstants.signals[`SIG${state.shutdownSignal}`];
    const how = await stopper.finish([state.pid, state.startTime, signal, STOP_TIMING.graceMs, STOP_TIMING.quitMs, STOP_TIMING.killMs]);
    if (how === "quit" || how === "killed") log.error("bpm.stop.forceful-shutdown", { pid: state.pid, how });
    await removeCgroup(state.cgroup);
    clearState(paths, { exit: false });
    Object.assign(ctx.outcome, { pid: state.pid, how });
  } finally {
    stopper.abandon();
    lock.release();
  }
}

/** `helper stop lock`: the helper takes the job's lock first (`locked`);
 * `finish` hands it the stop's arguments, or none when there is nothing to
 * stop, and resolves with how the process ended. */
function spawnStopper(helper: string, lock: Lock) {
  const child = spawn(helper, ["stop", "lock"], { stdio: withLock(["pipe", "pipe", "pipe"], lock) });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  child.stdin!.on("error", () => {});
  const closed = new Promise<number | null>((res) => {
    child.on("close", (code) => res(code));
    child.on("error", () => res(null));
  });
  const why = () => err.replace(/^error: /, "").trim() || `helper exit status ${child.exitCode ?? child.signalCode}`;
  const locked = new Promise<void>((res, rej) => {
    child.stdout!.on("data", () => /^locked$/m.test(out) && res());
    void closed.then(() => rej(new Error(`could not lock ${lock.file}: ${why()}`)));
  });
  return {
    locked,
    async finish(args: number[] | null): Promise<string> {
      child.stdin!.end(args ? `${args.join(" ")}\n` : "");
      if ((await closed) !== 0) throw new Error(`failed to stop job-process: ${why()}`);
      return out.replace(/^locked\n/, "").trim();
    },
    abandon: () => child.stdin!.end(),
  };
}
