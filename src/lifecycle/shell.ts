// `bpm shell`: /bin/bash inside a running process's container, as the job
// (namespaces, cgroup, user, groups, capabilities, limits, seccomp), on a
// pseudo-terminal created inside the container that the helper relays.
// Everything comes from the record start left, whatever bpm.yml says now; a
// process the previous bpm started (its record holds only the pid) is
// entered as that bpm did, from bpm.yml.
import { existsSync } from "node:fs";
import { encodeEnterPlan } from "../plan/encode.ts";
import { enterPlan, type EnterPlan } from "../plan/enter.ts";
import type { RecordedEntry } from "../plan/record.ts";
import { jobBook } from "../plan/book.ts";
import { buildPlan } from "../plan/plan.ts";
import { cgroupLayout } from "../plan/cgroup.ts";
import { readHostFacts } from "../runtime/hostfacts.ts";
import { cgroupFsRoot, jobCgroup } from "../runtime/cgroups.ts";
import { launch } from "../runtime/launch.ts";
import { readState, statusOf } from "../runtime/state.ts";
import { processConfig } from "./config.ts";
import { UserError, type JobContext } from "./job.ts";

export const SHELL = "/bin/bash";

/** The operator's shell: the job's identity and environment, but nothing read from what the job can write. */
function shellProgram(ctx: JobContext) {
  // The job can write its HOME: the operator's shell reads nothing found
  // there (rc files, readline's key bindings, terminfo, history). Its HOME
  // is the job's own read-only directory instead, and it gets a plain prompt.
  const env: Record<string, string> = {
    HOME: ctx.paths.internal.jobDir,
    HISTFILE: "",
    // $PWD, not \\w, which would show the job's directory as "~".
    PS1: "\\u@\\h:$PWD\\$ ",
    INPUTRC: "/etc/inputrc",
  };
  if (process.env.TERM) env.TERM = process.env.TERM;
  return { executable: SHELL, args: ["--norc", "--noprofile"], env };
}

/** For a process the previous bpm started: what today's bpm.yml says, as that bpm entered it. */
async function legacyEntry(ctx: JobContext): Promise<RecordedEntry> {
  const { paths, root } = ctx;
  const { proc } = await processConfig(ctx, "shell");
  const fsRoot = cgroupFsRoot();
  // Its cpu cgroup too where its start made one (v1: only for CPU limits).
  const cg = jobCgroup(fsRoot, root, paths.id);
  const cgroup = cgroupLayout(fsRoot, cg, {}, existsSync(cg.cpu));
  // Only its identity and environment are used: nothing of it is launched.
  const job = jobBook(paths, ctx.user, "run");
  const plan = buildPlan({ root, paths, proc, user: ctx.user, job, cgroup, mode: "foreground", host: readHostFacts(root, paths, proc), shareLock: "" });
  return {
    job: paths.job, process: paths.proc, cgroupDirs: cgroup.dirs, cgroupKill: cgroup.killFile, cgroupOom: cgroup.oomFile, cgroupScope: cgroup.scope?.unit ?? null, cgroupJoin: cgroup.tracking,
    namespaces: plan.namespaces, ...plan.user, capabilities: plan.capabilities, noNewPrivs: plan.noNewPrivs,
    seccomp: plan.seccomp ? Buffer.from(plan.seccomp).toString("hex") : null, rlimits: plan.rlimits, cwd: plan.cwd, env: plan.env,
  };
}

export async function shell(ctx: JobContext): Promise<number> {
  const record = readState(ctx.paths);
  if (statusOf(record) !== "running") throw new UserError("process is not running or could not be found");
  const entry = record!.entry ?? (await legacyEntry(ctx));
  const plan: EnterPlan = enterPlan(record!.pid, entry, shellProgram(ctx));
  ctx.outcome.pid = record!.pid;
  // The helper, in bpm's process group, gets the terminal's signals itself
  // and passes them to the shell; a TERM sent to bpm alone is passed on.
  let entered: Awaited<ReturnType<typeof launch>> | undefined;
  const ignore = () => {};
  const pass = () => entered?.child.kill("SIGTERM");
  process.on("SIGINT", ignore);
  process.on("SIGTERM", pass);
  try {
    entered = await launch(ctx.helper(), encodeEnterPlan(plan), { verb: "shell", stdio: ["inherit", "inherit", "inherit"] });
    if (entered.failure) throw new UserError(`failed to start a shell: ${entered.failure}`);
    const { status } = await entered.exit;
    ctx.outcome.exitStatus = status;
    return status;
  } finally {
    process.off("SIGINT", ignore);
    process.off("SIGTERM", pass);
  }
}
