// The launch plan for start and run: the host facts and the checks that
// can be made before anything is created, the job's cgroup layout and
// bookkeeping, and the container. A start the CLI cannot prepare is still
// handed over, as a refusal: the helper takes the lock and does nothing if
// the process runs already (as the contract says), or fails with the reason.
import { join } from "node:path";
import { bpmDirs } from "../bosh/paths.ts";
import type { ProcessConfig } from "../config/schema.ts";
import { stateConflict } from "../config/volumes.ts";
import { jobBook } from "../plan/book.ts";
import { cgroupLayout } from "../plan/cgroup.ts";
import { buildPlan, memoryLimit, type HostFacts, type LaunchPlan, type RefusalPlan, type StartPlan } from "../plan/plan.ts";
import { cgroupFsRoot, cpuControllerMissing, jobCgroup, limitsNotHeld, placement, wantsCpu, type JobCgroup, type Limits } from "../runtime/cgroups.ts";
import { reaperPath } from "../runtime/helper.ts";
import { readHostFacts, trustedPath, UntrustedSymlink } from "../runtime/hostfacts.ts";
import { readState, statusOf } from "../runtime/state.ts";
import { failure } from "./errors.ts";
import { UserError, type JobContext } from "./job.ts";

/** The command whose events a launch writes to bpm.log. */
export type LaunchEvent = "start" | "run" | "trace";

/** The host facts the plan needs, and what must hold before anything is
 * created: a start refused here leaves no trace. */
export function gatherFacts(ctx: JobContext, proc: ProcessConfig, event: LaunchEvent): HostFacts {
  const { root, paths } = ctx;
  const refuse = (why: string) => failure(event, why);
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
    const volume = proc.additional_volumes.find((v) => v.source === e.path);
    throw refuse(`${volume ? `volume ${volume.path}` : e.path}: ${e.message}`);
  }
  for (const { path, symlink } of host.fs.skipped) {
    sayOnLaunch(ctx, event, `Warning: ${path} is left out of the job's volumes: ${symlink} is a symlink that root does not control`, "volume-skipped", { path, symlink });
  }
  const realRoot = trustedPath(root).real;
  for (const v of proc.additional_volumes) {
    const source = host.fs.paths[v.source]!;
    if (!source.real.startsWith(realRoot + "/")) throw refuse(`volume ${v.path} leads outside ${root} (to ${source.real}): a volume must stay inside ${root}`);
    if (v.mount_only && !source.exists) throw refuse(`volume ${v.path} is mount_only but ${v.source} does not exist`);
  }
  // bpm's own state, reached through a symlink root owns (on a BOSH VM
  // /var/vcap/sys leads into /var/vcap/data): the schema saw only the text.
  const unrestricted = proc.unsafe.unrestricted_volumes.filter((v) => host.fs.paths[v.path] !== undefined);
  for (const v of [...proc.additional_volumes.map((v) => ({ ...v, host: v.source })), ...unrestricted.map((v) => ({ ...v, host: v.path }))]) {
    const why = stateConflict(host.fs.paths[v.host]!.real, v.writable, paths.job, [realRoot, root]);
    if (why) throw refuse(`volume ${v.path}: ${why}`);
  }
  return host;
}

/** What the job's cgroup limits, from its config. */
export function cgroupLimits(proc: ProcessConfig): Limits {
  const { processes: pids, cpu: cpus, cpu_weight: cpuWeight } = proc.limits;
  return { memoryBytes: memoryLimit(proc), pids, cpus, cpuWeight };
}

/** Everything the helper does for a start (detach) or a run (foreground). */
export function launchPlan(ctx: JobContext, proc: ProcessConfig, event: LaunchEvent, mode: LaunchPlan["mode"], pause = false): StartPlan {
  const { paths, root, user } = ctx;
  const fsRoot = cgroupFsRoot();
  const cg = jobCgroup(fsRoot, root, paths.id);
  const cgroup = cgroupLayout(fsRoot, cg, cgroupLimits(proc));
  const shutdownSignal = proc.shutdown_signal === "INT" ? "INT" : "TERM";
  let host: HostFacts;
  try {
    host = gatherFacts(ctx, proc, event);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    return refusal(ctx, event, e.message);
  }
  warnLimitsNotHeld(ctx, event, cg, cgroupLimits(proc));
  return buildPlan({
    root, paths, proc, user, mode, host, cgroup,
    job: jobBook(paths, user, event, { shutdownSignal, shutdownTimeoutMs: proc.shutdown_timeout }),
    shareLock: join(bpmDirs(root).locksDir, "shared-volumes.lock"),
    reaper: reaperPath(bpmDirs(root).helperDir),
    pause,
  });
}

/** A word about what a launch will do, on stderr and in bpm.log: said once per launch, and not at
 * all when the process runs already (a start or run does nothing then). */
function sayOnLaunch(ctx: JobContext, event: LaunchEvent, line: string, name: string, data: Record<string, unknown>): void {
  if (statusOf(readState(ctx.paths)) === "running") return;
  process.stderr.write(`${line}\n`);
  ctx.log.info(`bpm.${event}.${name}`, data);
}

/** Inside a container whose cgroup cannot hand controllers down, the job starts without the limits
 * it asks for (the container's own still bound it). */
function warnLimitsNotHeld(ctx: JobContext, event: LaunchEvent, cg: JobCgroup, limits: Limits): void {
  const why = limitsNotHeld(cg, limits);
  if (why) sayOnLaunch(ctx, event, `Warning: ${why}`, "limits-not-applied", { error: why });
}

/** A plan that launches nothing: the helper checks, under the lock, whether the process runs; if not it fails with why. */
function refusal(ctx: JobContext, event: LaunchEvent, why: string): RefusalPlan {
  return { kind: "refusal", job: jobBook(ctx.paths, ctx.user, event), why };
}

/** A privileged job on a host whose capability bounding set lacks part of the
 * privileged set runs without those. */
export function sayUnavailableCapabilities(ctx: JobContext, plan: StartPlan, event: LaunchEvent): void {
  if (plan.kind === "refusal") return;
  const lacking = plan.capabilitiesUnavailable ?? [];
  if (lacking.length === 0) return;
  const { job, proc } = ctx.paths;
  const line = `bpm: privileged job-process ${job}/${proc} runs without ${lacking.join(", ")}: this host's capability bounding set lacks ${lacking.length === 1 ? "it" : "them"}`;
  sayOnLaunch(ctx, event, line, "capabilities-unavailable", { capabilities: lacking });
}
