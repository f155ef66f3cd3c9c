// The launch plan for start and run: the host facts and the checks that
// can be made before anything is created, the job's cgroup layout and
// bookkeeping, and the container. A start the CLI cannot prepare is still
// handed over, as a refusal: the helper takes the lock and does nothing if
// the process runs already (as the contract says), or fails with the reason.
import { join } from "node:path";
import { bpmDirs } from "../bosh/paths.ts";
import type { ProcessConfig } from "../config/schema.ts";
import { jobBook } from "../plan/book.ts";
import { cgroupLayout } from "../plan/cgroup.ts";
import { volumeSource } from "../plan/mounts.ts";
import { buildPlan, memoryLimit, type HostFacts, type LaunchPlan } from "../plan/plan.ts";
import { cgroupFsRoot, cpuControllerMissing, jobCgroup, limitsNotHeld, placement, wantsCpu, type JobCgroup, type Limits } from "../runtime/cgroups.ts";
import { reaperPath } from "../runtime/helper.ts";
import { readHostFacts, trustedPath, UntrustedSymlink } from "../runtime/hostfacts.ts";
import { readState, statusOf } from "../runtime/state.ts";
import { UserError, type JobContext } from "./job.ts";

/** The command whose events a launch writes to bpm.log. */
export type LaunchEvent = "start" | "run" | "trace";

/** The host facts the plan needs, and what must hold before anything is
 * created: a start refused here leaves no trace. */
export function gatherFacts(ctx: JobContext, proc: ProcessConfig): HostFacts {
  const { root, paths } = ctx;
  const refuse = (why: string) => new UserError(`failed to start job-process: ${why}`);
  const limits = cgroupLimits(proc);
  const misplaced = placement(cgroupFsRoot()).problem;
  if (misplaced) throw refuse(misplaced);
  const noCpu = wantsCpu(limits) ? cpuControllerMissing(cgroupFsRoot(), limits) : null;
  if (noCpu) throw refuse(noCpu);
  if (proc.persistent_disk && !trustedPath(bpmDirs(root).storeDir).exists) {
    throw refuse(`persistent_disk is requested but ${bpmDirs(root).storeDir} does not exist (is a persistent disk attached?)`);
  }
  let host: HostFacts;
  try {
    host = readHostFacts(root, paths, proc);
  } catch (e) {
    if (!(e instanceof UntrustedSymlink)) throw e;
    const volume = proc.additional_volumes.find((v) => volumeSource(root, v.path) === e.path);
    throw refuse(`${volume ? `volume ${volume.path}` : e.path}: ${e.message}`);
  }
  const realRoot = trustedPath(root).real;
  for (const v of proc.additional_volumes) {
    const source = host.fs.paths[volumeSource(root, v.path)]!;
    if (!source.real.startsWith(realRoot + "/")) throw refuse(`volume ${v.path} leads outside ${root} (to ${source.real}): a volume must stay inside ${root}`);
    if (v.mount_only && !source.exists) throw refuse(`volume ${v.path} is mount_only but ${volumeSource(root, v.path)} does not exist`);
  }
  return host;
}

/** What the job's cgroup limits, from its config. */
export function cgroupLimits(proc: ProcessConfig): Limits {
  const { processes: pids, cpu: cpus, cpu_weight: cpuWeight } = proc.limits;
  return { memoryBytes: memoryLimit(proc), pids, cpus, cpuWeight };
}

/** Everything the helper does for a start (detach) or a run (foreground). */
export function launchPlan(ctx: JobContext, proc: ProcessConfig, event: LaunchEvent, mode: LaunchPlan["mode"]): LaunchPlan {
  const { paths, root, user } = ctx;
  const fsRoot = cgroupFsRoot();
  const cg = jobCgroup(fsRoot, root, paths.id);
  const cgroup = cgroupLayout(fsRoot, cg, cgroupLimits(proc));
  const shutdownSignal = proc.shutdown_signal === "INT" ? "INT" : "TERM";
  let host: HostFacts;
  try {
    host = gatherFacts(ctx, proc);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    return refusal(ctx, event, cgroup, e.message);
  }
  warnLimitsNotHeld(ctx, event, cg, cgroupLimits(proc));
  return buildPlan({
    root, paths, proc, user, mode, host, cgroup,
    job: jobBook(paths, user, event, { shutdownSignal, shutdownTimeoutMs: proc.shutdown_timeout }),
    shareLock: join(bpmDirs(root).locksDir, "shared-volumes.lock"),
    reaper: reaperPath(bpmDirs(root).helperDir),
  });
}

/** Inside a container whose cgroup cannot hand controllers down, the job starts without the limits
 * it asks for (the container's own still bound it): said once per launch, on stderr and in bpm.log,
 * and not at all when the process runs already (the start does nothing then). */
function warnLimitsNotHeld(ctx: JobContext, event: LaunchEvent, cg: JobCgroup, limits: Limits): void {
  const why = limitsNotHeld(cg, limits);
  if (!why || statusOf(readState(ctx.paths)) === "running") return;
  process.stderr.write(`Warning: ${why}\n`);
  ctx.log.info(`bpm.${event}.limits-not-applied`, { error: why });
}

/** A plan that launches nothing: the helper checks, under the lock, whether the process runs; if not it fails with why. */
export function refusal(ctx: JobContext, event: LaunchEvent, cgroup: LaunchPlan["cgroup"], why: string): LaunchPlan {
  return {
    mode: "detach", job: jobBook(ctx.paths, ctx.user, event, { refuse: why }), cgroup,
    namespaces: [], preps: [], hook: null, shareLock: "", rootfs: "", mounts: [],
    user: { uid: ctx.user.uid, gid: ctx.user.gid, groups: [] }, capabilities: [], rlimits: [], noNewPrivs: true,
    subreaper: false, cwd: "/", executable: "", args: [], env: {}, statusFile: "", seccomp: null, pause: false, reaper: null,
  };
}
