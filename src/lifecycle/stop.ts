// `bpm stop`: the shutdown signal, 15 s, QUIT, 2 s, then kill everything
// left in the container; returns the moment the process is gone.
import { spawnSync } from "node:child_process";
import { constants as osConstants } from "node:os";
import { cgroupFsRoot, jobCgroup, removeCgroup } from "../runtime/cgroups.ts";
import { acquireLock } from "../runtime/lock.ts";
import { clearState, readState, statusOf } from "../runtime/state.ts";
import type { JobContext } from "./job.ts";

export const STOP_TIMING = { graceMs: 15_000, quitMs: 2_000, killMs: 5_000 };

export async function stop(ctx: JobContext): Promise<void> {
  const { paths, log } = ctx;
  const helper = ctx.helper();
  const lock = acquireLock(paths.lockFile, helper);
  try {
    const state = readState(paths);
    if (!state || statusOf(state) !== "running") {
      log.info("bpm.stop.job-already-stopped");
      // Whatever a dead run or a killed bpm left: processes, cgroup, pidfile.
      await removeCgroup(state?.cgroup ?? jobCgroup(cgroupFsRoot(), ctx.root, paths.id));
      clearState(paths, { exit: false });
      return;
    }
    log.info("bpm.stop.stopping", { pid: state.pid, signal: state.shutdownSignal });
    const signal = osConstants.signals[`SIG${state.shutdownSignal}`];
    const r = spawnSync(helper, ["stop", String(state.pid), String(state.startTime), String(signal),
      String(STOP_TIMING.graceMs), String(STOP_TIMING.quitMs), String(STOP_TIMING.killMs)], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`failed to stop job-process: ${r.stderr.replace(/^error: /, "").trim()}`);
    const how = r.stdout.trim();
    if (how === "quit" || how === "killed") log.error("bpm.stop.forceful-shutdown", { pid: state.pid, how });
    await removeCgroup(state.cgroup);
    clearState(paths, { exit: false });
    log.info("bpm.stop.complete", { pid: state.pid, how });
  } finally {
    lock.release();
  }
}
