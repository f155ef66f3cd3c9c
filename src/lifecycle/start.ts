// `bpm start`: lock, load the config, clean up what a dead run left, prepare
// directories and logs, place the cgroup, run the pre-start hook, launch the
// container through the helper, and record the pidfile and state.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { constants as osConstants } from "node:os";
import { bpmDirs } from "../bosh/paths.ts";
import type { ProcessConfig } from "../config/schema.ts";
import { encodePlan } from "../plan/encode.ts";
import { buildPlan, memoryLimit, readHostFacts, type LaunchPlan } from "../plan/plan.ts";
import { volumeSource } from "../plan/mounts.ts";
import { cgroupFsRoot, createCgroup, jobCgroup, procsFiles, removeCgroup } from "../runtime/cgroups.ts";
import { ensureDir, openAppend } from "../runtime/files.ts";
import { acquireLock } from "../runtime/lock.ts";
import { startTime } from "../runtime/procs.ts";
import { clearState, readState, statusOf, writeState } from "../runtime/state.ts";
import { UserError, type JobContext } from "./job.ts";

/** Directories the job needs, created without following symlinks and owned as the contract says. */
export function prepareDirs(ctx: JobContext, proc: ProcessConfig): void {
  const { paths, user, root } = ctx;
  ensureDir(paths.logDir, 0o750, user);
  ensureDir(paths.runDir, 0o700);
  ensureDir(paths.dataDir, 0o700, user);
  ensureDir(paths.tmpDir, 0o700, user);
  ensureDir(paths.socketDir, 0o700, user);
  ensureDir(paths.rootfsDir, 0o700);
  if (proc.persistent_disk) {
    const store = bpmDirs(root).storeDir;
    if (!existsSync(store)) throw new UserError(`persistent_disk is requested but ${store} does not exist (is a persistent disk attached?)`);
    ensureDir(paths.storeDir, 0o700, user);
  }
  for (const v of proc.additional_volumes) {
    const source = volumeSource(root, v.path);
    if (v.mount_only) {
      if (!existsSync(source)) throw new UserError(`volume ${v.path} is mount_only but ${source} does not exist`);
    } else {
      ensureDir(dirname(source), 0o755);
      ensureDir(source, 0o700, user);
    }
  }
}

export interface Launched {
  pid: number;
  /** Resolves with the helper's exit status (the job's, in the foreground). */
  exit: Promise<number>;
}

/** Runs the helper's launch verb: the plan goes out on fd 3, "pid N" and "ok" or "error: ..." come back. */
export function launch(helper: string, plan: LaunchPlan, stdio: [number | "ignore" | "inherit", number, number]): Promise<Launched> {
  return new Promise((resolve, reject) => {
    const child = spawn(helper, ["launch"], { argv0: "bpm-init", stdio: [...stdio, "pipe"], detached: plan.mode === "detach" });
    const exit = new Promise<number>((res) => child.on("exit", (code, sig) => res(code ?? 128 + (osConstants.signals[sig!] ?? 0))));
    const channel = child.stdio[3] as unknown as NodeJS.ReadWriteStream;
    let reply = "";
    channel.on("data", (d: Buffer) => (reply += d.toString()));
    channel.on("error", () => {});
    channel.on("end", () => {
      const pid = Number(/^pid (\d+)$/m.exec(reply)?.[1] ?? 0);
      const error = /^error: (.*)$/m.exec(reply)?.[1];
      if (error || !/^ok$/m.test(reply)) {
        reject(new UserError(`failed to start job-process: ${error ?? "the container's init exited before starting the job"}`));
      } else {
        resolve({ pid, exit });
      }
    });
    channel.write(encodePlan(plan));
    if (plan.mode === "detach") child.unref();
  });
}

function runPreStart(hook: string, env: Record<string, string>, out: number, err: number): void {
  const r = spawnSync(hook, [], { env, stdio: ["ignore", out, err] });
  if (r.error) throw new UserError(`prestart hook failed: ${r.error.message}`);
  if (r.status !== 0) throw new UserError(`prestart hook failed: exit status ${r.status ?? 128 + (osConstants.signals[r.signal!] ?? 0)}`);
}

/** Everything a start needs up to the launch, shared by start and run. */
export function prepareLaunch(ctx: JobContext, proc: ProcessConfig, mode: LaunchPlan["mode"]) {
  const { paths, root } = ctx;
  prepareDirs(ctx, proc);
  const out = openAppend(paths.stdoutLog, 0o600, ctx.user);
  const err = openAppend(paths.stderrLog, 0o600, ctx.user);
  const cg = jobCgroup(cgroupFsRoot(), root, paths.id);
  const plan = buildPlan({ root, paths, proc, user: ctx.user, cgroupProcs: procsFiles(cg), mode, host: readHostFacts() });
  return { out, err, cg, plan, close: () => (closeSync(out), closeSync(err)) };
}

export async function start(ctx: JobContext, proc: ProcessConfig): Promise<void> {
  const { paths, log } = ctx;
  const helper = ctx.helper();
  const lock = acquireLock(paths.lockFile, helper);
  try {
    log.info("bpm.start.starting");
    const state = readState(paths);
    if (statusOf(state) === "running") {
      log.info("bpm.start.process-already-running", { pid: state!.pid });
      return;
    }
    if (state) {
      log.info("bpm.start.cleaning-up-failed-process", { pid: state.pid });
      await removeCgroup(state.cgroup);
      clearState(paths, { exit: false });
    }
    const prep = prepareLaunch(ctx, proc, "detach");
    try {
      // A cgroup with no state is what a bpm killed mid-start leaves behind.
      await removeCgroup(prep.cg);
      createCgroup(cgroupFsRoot(), prep.cg, { memoryBytes: memoryLimit(proc), pids: proc.limits.processes });
      if (proc.hooks.pre_start) runPreStart(proc.hooks.pre_start, prep.plan.env, prep.out, prep.err);
      rmSync(paths.exitFile, { force: true });
      const { pid } = await launch(helper, prep.plan, ["ignore", prep.out, prep.err]);
      const started = startTime(pid);
      if (started === null) throw new UserError("failed to start job-process: the process exited immediately");
      writeState(paths, {
        version: 1, job: paths.job, process: paths.proc, id: paths.id, pid, startTime: started,
        startedAt: new Date().toISOString(), cgroup: prep.cg, shutdownSignal: proc.shutdown_signal === "INT" ? "INT" : "TERM",
      });
      log.info("bpm.start.complete", { pid });
    } catch (e) {
      log.error("bpm.start.failed", { error: (e as Error).message });
      await removeCgroup(prep.cg).catch(() => {});
      clearState(paths, { exit: false });
      throw e;
    } finally {
      prep.close();
    }
  } finally {
    lock.release();
  }
}
