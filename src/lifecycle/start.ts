// `bpm start`: the plan, then this process becomes the helper, which takes
// the lock, does nothing if the process runs, cleans up what a dead run
// left, makes the cgroup, launches the container detached, records the
// pidfile and state, and logs it (helper-c/start.c).
import type { ProcessConfig } from "../config/schema.ts";
import { encodePlan } from "../plan/encode.ts";
import { handOver } from "../runtime/handover.ts";
import { UserError, type JobContext } from "./job.ts";
import { launchPlan, sayUnavailableCapabilities } from "./prepare.ts";

/** `wait` runs the helper as a child and returns its exit status instead (tests that cycle in one process). */
export function start(ctx: JobContext, proc: ProcessConfig, how: "replace" | "wait" = "replace"): Promise<number> {
  const plan = launchPlan(ctx, proc, "start", "detach");
  sayUnavailableCapabilities(ctx, plan, "start");
  return handOver(ctx.helper(), "start", encodePlan(plan, ctx.log.take()), how).catch((e: Error) => {
    throw new UserError(`${plan.job.errorPrefix}${e.message}`);
  });
}
