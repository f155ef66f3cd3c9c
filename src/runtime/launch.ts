// Spawning the helper with a plan on fd 3 and reading its report: "pid N"
// once the init exists, then "ok" once the job has exec'd, or "error: ...".
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { constants as osConstants } from "node:os";
import type { Readable, Writable } from "node:stream";
import { encodePlan } from "../plan/encode.ts";
import type { LaunchPlan } from "../plan/plan.ts";

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

export function launch(helper: string, plan: LaunchPlan, opts: LaunchOptions): Promise<Launched> {
  return new Promise((resolve) => {
    const pause = opts.beforeExec !== undefined;
    const stdio: StdioOptions = [...opts.stdio, "pipe", ...(pause ? ["pipe" as const] : [])];
    // launch: a session of its own, so a Ctrl-C reaches bpm alone, which
    // forwards it once. shell: stays in the terminal's process group, where
    // window-size changes are signalled.
    const verb = opts.verb ?? "launch";
    const child = spawn(helper, [verb], { argv0: verb === "shell" ? "bpm-shell" : "bpm-init", stdio, detached: verb === "launch" });
    const exit = exitStatus(child);
    opts.onSpawn?.(child);
    const channel = child.stdio[3] as Readable & Writable;
    let reply = "";
    let pid = 0;
    channel.on("error", () => {});
    channel.on("data", (d: Buffer) => {
      reply += d.toString();
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
    channel.on("end", () => {
      const m = /^pid (\d+) (\d+)$/m.exec(reply);
      pid = Number(m?.[1] ?? 0);
      const startTime = Number(m?.[2] ?? 0);
      const error = /^error: (.*)$/m.exec(reply)?.[1];
      const failure = error ?? (/^ok$/m.test(reply) ? undefined : "the container's init exited before starting the job");
      resolve({ child, pid, startTime, failure, exit });
    });
    channel.write(encodePlan(plan, opts.target));
    if (plan.mode === "detach") child.unref();
  });
}
