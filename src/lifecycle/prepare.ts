// What start and run share up to the launch: the host facts and checks, the
// logs, the lock and the check for a running or dead process, a fresh cgroup
// with the limits, and the launch plan. The helper then creates the job's
// directories and runs the pre_start hook, through descriptors it resolved
// without following symlinks (src/plan/plan.ts's preps, helper-c/prepare.c).
import { closeSync, rmSync } from "node:fs";
import { join } from "node:path";
import { bpmDirs } from "../bosh/paths.ts";
import type { ProcessConfig } from "../config/schema.ts";
import { buildPlan, memoryLimit, type HostFacts, type LaunchPlan } from "../plan/plan.ts";
import { volumeSource } from "../plan/mounts.ts";
import { cgroupFsRoot, createCgroup, jobCgroup, procsFiles, removeCgroup } from "../runtime/cgroups.ts";
import { ensureDir, openAppend } from "../runtime/files.ts";
import { readHostFacts, trustedPath, UntrustedSymlink } from "../runtime/hostfacts.ts";
import { spawnLauncher, type LaunchOptions, type Launcher } from "../runtime/launch.ts";
import { takeLock, type Lock } from "../runtime/lock.ts";
import { clearState, readState, statusOf } from "../runtime/state.ts";
import { UserError, type JobContext } from "./job.ts";

/** The command whose events a launch writes to bpm.log. */
export type LaunchEvent = "start" | "run" | "trace";

/** With the lock held: true if the process runs already (nothing to do);
 * otherwise whatever a dead run left is cleaned up first. */
export async function alreadyRunning(ctx: JobContext, event: LaunchEvent): Promise<boolean> {
  const state = readState(ctx.paths);
  if (statusOf(state) === "running") {
    ctx.log.info(`bpm.${event}.process-already-running`, { pid: state!.pid });
    return true;
  }
  if (state) {
    ctx.log.info(`bpm.${event}.cleaning-up-failed-process`, { pid: state.pid });
    await removeCgroup(state.cgroup);
    clearState(ctx.paths, { exit: false });
  }
  return false;
}

/** The host facts the plan needs, and what must hold before anything is
 * created: a start refused here leaves no trace. */
export function gatherFacts(ctx: JobContext, proc: ProcessConfig): HostFacts {
  const { root, paths } = ctx;
  const refuse = (why: string) => new UserError(`failed to start job-process: ${why}`);
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

/** The process's stdout and stderr logs, open for appending. */
export interface Logs {
  out: number;
  err: number;
  close: () => void;
}

/** The log files, in a log directory made without following symlinks. */
function openLogs(ctx: JobContext): Logs {
  ensureDir(ctx.paths.logDir, 0o750, ctx.user);
  const out = openAppend(ctx.paths.stdoutLog, 0o600, ctx.user);
  let err: number;
  try {
    err = openAppend(ctx.paths.stderrLog, 0o600, ctx.user);
  } catch (e) {
    closeSync(out);
    throw e;
  }
  return { out, err, close: () => (closeSync(out), closeSync(err)) };
}

export interface Locked {
  logs: Logs;
  launcher: Launcher;
  host: HostFacts;
}

/** Gathers the host facts, opens the logs, spawns the helper that will
 * launch (onto them, as `stdio` says) and waits until it holds the job's
 * lock. Null when the process already runs: nothing is done, as the contract
 * says, even when its volumes or logs could no longer be prepared. A dead
 * run's leftovers are cleaned up. */
export async function lockForLaunch(
  ctx: JobContext, proc: ProcessConfig, lock: Lock, event: LaunchEvent, opts: (logs: Logs) => LaunchOptions,
): Promise<Locked | null> {
  let logs: Logs;
  let host: HostFacts;
  try {
    host = gatherFacts(ctx, proc);
    logs = openLogs(ctx);
  } catch (e) {
    takeLock(lock, ctx.helper());
    if (await alreadyRunning(ctx, event)) return null;
    throw e;
  }
  const launcher = spawnLauncher(ctx.helper(), { ...opts(logs), lock });
  try {
    await launcher.locked;
    if (!(await alreadyRunning(ctx, event))) return { logs, launcher, host };
  } catch (e) {
    launcher.cancel();
    logs.close();
    throw e;
  }
  launcher.cancel();
  logs.close();
  return null;
}

export interface Prepared {
  cg: ReturnType<typeof jobCgroup>;
  plan: LaunchPlan;
}

/** With the lock held and nothing running: a fresh cgroup with the limits
 * and the plan. On failure the cgroup is removed. */
export async function prepareLaunch(ctx: JobContext, proc: ProcessConfig, mode: LaunchPlan["mode"], host: HostFacts): Promise<Prepared> {
  const { paths, root } = ctx;
  const cg = jobCgroup(cgroupFsRoot(), root, paths.id);
  try {
    const shareLock = join(bpmDirs(root).locksDir, "shared-volumes.lock");
    const plan = buildPlan({ root, paths, proc, user: ctx.user, cgroupProcs: procsFiles(cg), mode, host, shareLock });
    ensureDir(paths.runDir, 0o700);
    // A cgroup with no state is what a bpm killed mid-start leaves behind.
    await removeCgroup(cg);
    createCgroup(cgroupFsRoot(), cg, { memoryBytes: memoryLimit(proc), pids: proc.limits.processes });
    rmSync(paths.exitFile, { force: true });
    return { cg, plan };
  } catch (e) {
    await removeCgroup(cg).catch(() => {});
    throw e;
  }
}
