// `bpm start`: lock, clean up what a dead run left, prepare, launch the
// container detached through the helper, and record the pidfile and state.
import type { ProcessConfig } from "../config/schema.ts";
import { removeCgroup } from "../runtime/cgroups.ts";
import { launch } from "../runtime/launch.ts";
import { acquireLock } from "../runtime/lock.ts";
import { clearState, writeState } from "../runtime/state.ts";
import { UserError, type JobContext } from "./job.ts";
import { alreadyRunning, prepareLaunch, type Prepared } from "./prepare.ts";

export async function start(ctx: JobContext, proc: ProcessConfig): Promise<void> {
  const { paths, log } = ctx;
  const helper = ctx.helper();
  const lock = acquireLock(paths.lockFile, helper);
  try {
    log.info("bpm.start.starting");
    if (await alreadyRunning(ctx, "start")) return;
    let prep: Prepared | undefined;
    try {
      prep = await prepareLaunch(ctx, proc, "detach");
      const { pid, startTime, failure } = await launch(helper, prep.plan, { stdio: ["ignore", prep.out, prep.err] });
      if (failure) throw new UserError(`failed to start job-process: ${failure}`);
      // A job that has already exited is recorded all the same: it reads "failed", with its exit.
      writeState(paths, {
        version: 1, job: paths.job, process: paths.proc, id: paths.id, pid, startTime,
        startedAt: new Date().toISOString(), cgroup: prep.cg, shutdownSignal: proc.shutdown_signal === "INT" ? "INT" : "TERM",
      });
      log.info("bpm.start.complete", { pid });
    } catch (e) {
      log.error("bpm.start.failed", { error: (e as Error).message });
      if (prep) await removeCgroup(prep.cg).catch(() => {});
      clearState(paths, { exit: false });
      throw e;
    } finally {
      prep?.close();
    }
  } finally {
    lock.release();
  }
}
