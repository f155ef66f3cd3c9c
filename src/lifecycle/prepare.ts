// What start and run share up to the launch: directories and logs, the lock
// and the check for a running or dead process, a fresh cgroup with the
// limits, the pre-start hook, and the launch plan.
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, lstatSync, rmSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { constants as osConstants } from "node:os";
import { bpmDirs } from "../bosh/paths.ts";
import type { ProcessConfig } from "../config/schema.ts";
import { buildPlan, memoryLimit, readHostFacts, type LaunchPlan } from "../plan/plan.ts";
import { volumeSource } from "../plan/mounts.ts";
import { cgroupFsRoot, createCgroup, jobCgroup, procsFiles, removeCgroup } from "../runtime/cgroups.ts";
import { ensureDir, openAppend } from "../runtime/files.ts";
import { spawnLauncher, type LaunchOptions, type Launcher } from "../runtime/launch.ts";
import { acquireLock, takeLock, type Lock } from "../runtime/lock.ts";
import { clearState, readState, statusOf } from "../runtime/state.ts";
import { UserError, type JobContext } from "./job.ts";

/** With the lock held: true if the process runs already (nothing to do);
 * otherwise whatever a dead run left is cleaned up first. */
export async function alreadyRunning(ctx: JobContext, event: "start" | "run"): Promise<boolean> {
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

/** What must hold before anything is created: a start refused here leaves no trace. */
function checkSources(ctx: JobContext, proc: ProcessConfig): void {
  const { root } = ctx;
  const refuse = (why: string) => new UserError(`failed to start job-process: ${why}`);
  if (proc.persistent_disk && !existsSync(bpmDirs(root).storeDir)) {
    throw refuse(`persistent_disk is requested but ${bpmDirs(root).storeDir} does not exist (is a persistent disk attached?)`);
  }
  for (const v of proc.additional_volumes) {
    const source = volumeSource(root, v.path);
    // A symlink anywhere below ROOT could lead the bind mount anywhere on the host.
    const below = relative(root, source).split("/");
    for (let n = 1; n <= below.length; n++) {
      const p = join(root, ...below.slice(0, n));
      let st;
      try {
        st = lstatSync(p);
      } catch {
        break;
      }
      if (st.isSymbolicLink()) throw refuse(`volume ${v.path}: ${p} is a symlink (a volume must stay inside ${root})`);
    }
    if (v.mount_only && !existsSync(source)) throw refuse(`volume ${v.path} is mount_only but ${source} does not exist`);
  }
}

/** Directories the job needs, created without following symlinks and owned as the contract says. */
function prepareDirs(ctx: JobContext, proc: ProcessConfig): void {
  const { paths, user } = ctx;
  checkSources(ctx, proc);
  ensureDir(paths.logDir, 0o750, user);
  ensureDir(paths.runDir, 0o700);
  ensureDir(paths.dataDir, 0o700, user);
  ensureDir(paths.tmpDir, 0o700, user);
  ensureDir(paths.socketDir, 0o700, user);
  ensureDir(paths.rootfsDir, 0o700);
  if (proc.persistent_disk) ensureDir(paths.storeDir, 0o700, user);
  for (const v of proc.additional_volumes) {
    if (v.mount_only) continue;
    const source = volumeSource(ctx.root, v.path);
    ensureDir(dirname(source), 0o755);
    ensureDir(source, 0o700, user);
  }
}

function runPreStart(hook: string, env: Record<string, string>, out: number, err: number): void {
  const r = spawnSync(hook, [], { env, stdio: ["ignore", out, err] });
  if (r.error) throw new UserError(`prestart hook failed: ${r.error.message}`);
  if (r.status !== 0) throw new UserError(`prestart hook failed: exit status ${r.status ?? 128 + (osConstants.signals[r.signal!] ?? 0)}`);
}

/** Makes each shared volume's host directory a shared mount point (once: a
 * bind onto itself), so the containers that mount it are peers and a mount
 * made under it by one is seen by all. Serialised across jobs. */
function shareVolumes(ctx: JobContext, proc: ProcessConfig): void {
  const dirs = proc.additional_volumes.filter((v) => v.shared).map((v) => volumeSource(ctx.root, v.path));
  if (dirs.length === 0) return;
  const helper = ctx.helper();
  const lock = acquireLock(join(dirname(ctx.paths.lockFile), "shared-volumes.lock"), helper);
  try {
    const r = spawnSync(helper, ["share", ...dirs], { encoding: "utf8" });
    if (r.status !== 0) throw new UserError(`failed to share volumes: ${(r.stderr || r.error?.message || "").replace(/^error: /, "").trim()}`);
  } finally {
    lock.release();
  }
}

/** The process's stdout and stderr logs, open for appending. */
export interface Logs {
  out: number;
  err: number;
  close: () => void;
}

/** Directories, shared volumes and logs: what can be done before the lock,
 * since redoing it changes nothing (the helper that waits for the lock is
 * spawned with the logs as its output). Refused sources leave no trace. */
function openLogs(ctx: JobContext, proc: ProcessConfig): Logs {
  prepareDirs(ctx, proc);
  shareVolumes(ctx, proc);
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
}

/** Opens the logs, spawns the helper that will launch (onto them, as
 * `stdio` says) and waits until it holds the job's lock. Null when the
 * process already runs: nothing is done, as the contract says, even when
 * the logs could not be opened. A dead run's leftovers are cleaned up. */
export async function lockForLaunch(
  ctx: JobContext, proc: ProcessConfig, lock: Lock, event: "start" | "run", opts: (logs: Logs) => LaunchOptions,
): Promise<Locked | null> {
  let logs: Logs;
  try {
    logs = openLogs(ctx, proc);
  } catch (e) {
    takeLock(lock, ctx.helper());
    if (await alreadyRunning(ctx, event)) return null;
    throw e;
  }
  const launcher = spawnLauncher(ctx.helper(), { ...opts(logs), lock });
  try {
    await launcher.locked;
    if (!(await alreadyRunning(ctx, event))) return { logs, launcher };
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

/** With the lock held and nothing running: a fresh cgroup with the limits,
 * the pre-start hook and the plan. On failure the cgroup is removed. */
export async function prepareLaunch(ctx: JobContext, proc: ProcessConfig, mode: LaunchPlan["mode"], logs: Logs): Promise<Prepared> {
  const { paths, root } = ctx;
  const cg = jobCgroup(cgroupFsRoot(), root, paths.id);
  try {
    const plan = buildPlan({ root, paths, proc, user: ctx.user, cgroupProcs: procsFiles(cg), mode, host: readHostFacts() });
    // A cgroup with no state is what a bpm killed mid-start leaves behind.
    await removeCgroup(cg);
    createCgroup(cgroupFsRoot(), cg, { memoryBytes: memoryLimit(proc), pids: proc.limits.processes });
    if (proc.hooks.pre_start) runPreStart(proc.hooks.pre_start, plan.env, logs.out, logs.err);
    rmSync(paths.exitFile, { force: true });
    return { cg, plan };
  } catch (e) {
    await removeCgroup(cg).catch(() => {});
    throw e;
  }
}
