// `bpm stop`: this process becomes the helper, which takes the lock, sends
// the shutdown signal recorded at start, waits 15 s, sends QUIT, waits 2 s,
// kills everything left in the container, and removes the cgroup, pidfile
// and state; it returns the moment the process is gone (helper-c/stop.c).
// Nothing here reads bpm.yml: a broken or changed config cannot stop a stop.
import { jobBook } from "../plan/book.ts";
import { cgroupLayout } from "../plan/cgroup.ts";
import { encodeStopPlan } from "../plan/encode.ts";
import { cgroupFsRoot, jobCgroup } from "../runtime/cgroups.ts";
import { handOver } from "../runtime/handover.ts";
import { failure } from "./errors.ts";
import type { JobContext } from "./job.ts";

export function stop(ctx: JobContext, how: "replace" | "wait" = "replace"): Promise<number> {
  const fsRoot = cgroupFsRoot();
  const cgroup = cgroupLayout(fsRoot, jobCgroup(fsRoot, ctx.root, ctx.paths.id), {});
  const job = jobBook(ctx.paths, ctx.user, "stop");
  return handOver(ctx.helper(), "stop", encodeStopPlan({ job, cgroup }, ctx.log.take()), how).catch((e: Error) => {
    throw failure("stop", e.message);
  });
}
