// `bpm shell`: /bin/bash inside a running process's container, as the job
// (namespaces, cgroup, user, groups, capabilities, limits, seccomp), on a
// pseudo-terminal created inside the container that the helper relays.
import { existsSync } from "node:fs";
import type { ProcessConfig } from "../config/schema.ts";
import { buildPlan } from "../plan/plan.ts";
import { readHostFacts } from "../runtime/hostfacts.ts";
import { cgroupLayout } from "../plan/cgroup.ts";
import { cgroupFsRoot, jobCgroup } from "../runtime/cgroups.ts";
import { launch } from "../runtime/launch.ts";
import { readState, statusOf } from "../runtime/state.ts";
import { UserError, type JobContext } from "./job.ts";

export const SHELL = "/bin/bash";

export async function shell(ctx: JobContext, proc: ProcessConfig): Promise<number> {
  const { paths, root } = ctx;
  const state = readState(paths);
  if (statusOf(state) !== "running") throw new UserError("process is not running or could not be found");
  const fsRoot = cgroupFsRoot();
  // Only joined: with no job bookkeeping the helper makes nothing of the cgroup.
  // Its cpu cgroup too where its start made one (v1: only for CPU limits).
  const cg = jobCgroup(fsRoot, root, paths.id);
  const cgroup = cgroupLayout(fsRoot, cg, {}, existsSync(cg.cpu));
  const plan = buildPlan({ root, paths, proc, user: ctx.user, job: null, cgroup, mode: "foreground", host: readHostFacts(root, paths, proc), shareLock: "" });
  // The container exists: no mounts to make and no exit record to write.
  plan.mounts = [];
  plan.preps = [];
  plan.hook = null;
  plan.rootfs = "";
  plan.statusFile = "";
  plan.executable = SHELL;
  // The job can write its HOME: the operator's shell reads nothing found
  // there (rc files, readline's key bindings, terminfo, history). Its HOME
  // is the job's own read-only directory instead, and it gets a plain prompt.
  plan.args = ["--norc", "--noprofile"];
  plan.env.HOME = paths.internal.jobDir;
  plan.env.HISTFILE = "";
  // $PWD, not \\w, which would show the job's directory as "~".
  plan.env.PS1 = "\\u@\\h:$PWD\\$ ";
  plan.env.INPUTRC = "/etc/inputrc";
  if (process.env.TERM) plan.env.TERM = process.env.TERM;
  ctx.outcome.pid = state!.pid;
  // The helper, in bpm's process group, gets the terminal's signals itself
  // and passes them to the shell; a TERM sent to bpm alone is passed on.
  let entered: Awaited<ReturnType<typeof launch>> | undefined;
  const ignore = () => {};
  const pass = () => entered?.child.kill("SIGTERM");
  process.on("SIGINT", ignore);
  process.on("SIGTERM", pass);
  try {
    entered = await launch(ctx.helper(), plan, { verb: "shell", target: state!.pid, stdio: ["inherit", "inherit", "inherit"] });
    if (entered.failure) throw new UserError(`failed to start a shell: ${entered.failure}`);
    const { status } = await entered.exit;
    ctx.outcome.exitStatus = status;
    return status;
  } finally {
    process.off("SIGINT", ignore);
    process.off("SIGTERM", pass);
  }
}
