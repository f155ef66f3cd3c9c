// `bpm start`: lock, clean up what a dead run left, prepare, launch the
// container detached through the helper, and record the pidfile and state.
import type { ProcessConfig } from "../config/schema.ts";
import { removeCgroup } from "../runtime/cgroups.ts";
import { openLock } from "../runtime/lock.ts";
import { clearState, writeState } from "../runtime/state.ts";
import { UserError, type JobContext } from "./job.ts";
import { lockForLaunch, prepareLaunch, type Prepared } from "./prepare.ts";

export async function start(ctx: JobContext, proc: ProcessConfig): Promise<void> {
  const { paths, log } = ctx;
  const lock = openLock(paths.lockFile);
  try {
    const locked = await lockForLaunch(ctx, proc, lock, "start", (logs) => ({ stdio: ["ignore", logs.out, logs.err] }));
    if (!locked) return;
    const { logs, launcher, host } = locked;
    let prep: Prepared | undefined;
    try {
      prep = await prepareLaunch(ctx, proc, "detach", host);
      const { pid, startTime, failure } = await launcher.launch(prep.plan);
      if (failure) throw new UserError(`failed to start job-process: ${failure}`);
      // A job that has already exited is recorded all the same: it reads "failed", with its exit.
      try {
        writeState(paths, {
          version: 1, job: paths.job, process: paths.proc, id: paths.id, pid, startTime,
          startedAt: new Date().toISOString(), cgroup: prep.cg, shutdownSignal: proc.shutdown_signal === "INT" ? "INT" : "TERM",
        });
      } catch (e) {
        // Without its state nobody could stop it: it goes with its cgroup, below.
        throw new UserError(`failed to start job-process: ${(e as Error).message}`);
      }
      ctx.outcome.pid = pid;
    } catch (e) {
      if (prep) await removeCgroup(prep.cg).catch(() => {});
      clearState(paths, { exit: false });
      throw e;
    } finally {
      launcher.cancel();
      logs.close();
    }
  } catch (e) {
    log.error("bpm.start.failed", { error: (e as Error).message });
    throw e;
  } finally {
    lock.release();
  }
}
