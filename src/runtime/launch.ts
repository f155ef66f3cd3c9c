// Spawning the helper with a plan on fd 3 and reading its report: "pid N"
// once the init exists, then "ok" once the job has exec'd, or "error: ...".
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { constants as osConstants } from "node:os";
import type { Readable, Writable } from "node:stream";
import { encodePlan } from "../plan/encode.ts";
import type { LaunchPlan } from "../plan/plan.ts";
import { withLock, type Lock } from "./lock.ts";

export type Stdio = number | "ignore" | "inherit" | "pipe";

export interface Launched {
  child: ChildProcess;
  /** The container's init (host pid); 0 if the helper failed before forking it. */
  pid: number;
  /** The init's start time (/proc/PID/stat), read while it could not yet be gone. */
  startTime: number;
  /** Why the job did not start, as the helper said it; undefined when it runs. */
  failure?: string;
  /** Resolves with the helper's exit status: in the foreground, the job's. */
  exit: Promise<number>;
}

export interface LaunchOptions {
  verb?: "launch" | "shell";
  /** shell: the host pid of the running container's init to enter. */
  target?: number;
  stdio: [Stdio, Stdio, Stdio];
  /** The job's lock, open: the helper takes it before anything else. */
  lock?: Lock;
  /** Startup tracing: called once the init exists while the job waits before
   * exec; when it resolves, the job is let go. */
  beforeExec?: (initPid: number) => Promise<void>;
  /** Called right after the spawn, before any output can be lost (run's tee). */
  onSpawn?: (child: ChildProcess) => void;
}

/** The exit status of a child as a shell would report it. */
export function exitStatus(child: ChildProcess): Promise<number> {
  return new Promise((res) => child.on("exit", (code, sig) => res(code ?? 128 + (osConstants.signals[sig!] ?? 0))));
}

/** A helper waiting for its plan. */
export interface Launcher {
  child: ChildProcess;
  /** Resolves once the helper holds the job's lock (at once without one);
   * rejects if it ended first. */
  locked: Promise<void>;
  /** Sends the plan; resolves with the helper's report. */
  launch(plan: LaunchPlan): Promise<Launched>;
  /** Lets the helper go without launching anything (it exits 0); no-op after launch. */
  cancel(): void;
}

export function spawnLauncher(helper: string, opts: LaunchOptions): Launcher {
  const pause = opts.beforeExec !== undefined;
  const locking = opts.lock !== undefined;
  // fd 3: plan in, report out; fd 4: the go-ahead for startup tracing.
  const own = [...opts.stdio, "pipe" as const, ...(pause ? ["pipe" as const] : [])];
  const stdio = locking ? withLock(own, opts.lock!) : own;
  // launch: a session of its own, so a Ctrl-C reaches bpm alone, which
  // forwards it once. shell: stays in the terminal's process group, where
  // window-size changes are signalled.
  const verb = opts.verb ?? "launch";
  const child = spawn(helper, locking ? [verb, "lock"] : [verb], { argv0: verb === "shell" ? "bpm-shell" : "bpm-init", stdio, detached: verb === "launch" });
  const exit = exitStatus(child);
  opts.onSpawn?.(child);
  const channel = child.stdio[3] as Readable & Writable;
  let reply = "";
  let pid = 0;
  let sent = false;
  const ended = new Promise<void>((res) => channel.on("end", res));
  const errorLine = () => /^error: (.*)$/m.exec(reply)?.[1];
  let onLocked = () => {};
  const locked = new Promise<void>((res, rej) => {
    if (!locking) return res();
    onLocked = res;
    void ended.then(() => rej(new Error(`could not take the job's lock: ${errorLine() ?? "the helper exited"}`)));
  });
  locked.catch(() => {}); // whoever awaits it sees the error; nobody else must
  channel.on("error", () => {});
  channel.on("data", (d: Buffer) => {
    reply += d.toString();
    if (/^locked$/m.test(reply)) onLocked();
    const m = /^pid (\d+) /m.exec(reply);
    if (pause && !pid && m) {
      pid = Number(m[1]);
      const go = child.stdio[4] as Writable;
      go.on("error", () => {});
      opts.beforeExec!(pid).then(
        () => go.end("g"),
        (e: Error) => {
          reply += `error: ${e.message}\n`;
          child.kill("SIGTERM");
        },
      );
    }
  });
  return {
    child,
    locked,
    async launch(plan) {
      sent = true;
      channel.write(encodePlan(plan, opts.target));
      if (plan.mode === "detach") child.unref();
      await ended;
      const m = /^pid (\d+) (\d+)$/m.exec(reply);
      pid = Number(m?.[1] ?? 0);
      const startTime = Number(m?.[2] ?? 0);
      const failure = errorLine() ?? (/^ok$/m.test(reply) ? undefined : "the container's init exited before starting the job");
      return { child, pid, startTime, failure, exit };
    },
    cancel() {
      if (!sent) channel.end();
      sent = true;
    },
  };
}

/** Spawns the helper and sends it the plan at once (no lock to wait for). */
export function launch(helper: string, plan: LaunchPlan, opts: LaunchOptions): Promise<Launched> {
  return spawnLauncher(helper, opts).launch(plan);
}
